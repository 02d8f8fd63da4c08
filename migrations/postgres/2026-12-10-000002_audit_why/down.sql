DROP TRIGGER audit_log_no_truncate ON audit_log;
DROP TRIGGER audit_log_append_only ON audit_log;
DROP FUNCTION audit_log_append_only();
DROP INDEX audit_log_subject;
DROP INDEX audit_log_object;
ALTER TABLE audit_log DROP COLUMN object_id;
ALTER TABLE audit_log DROP COLUMN object_type;
ALTER TABLE audit_log DROP COLUMN reason;
