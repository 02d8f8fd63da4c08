DROP TRIGGER audit_log_no_delete;
DROP TRIGGER audit_log_no_update;
DROP INDEX audit_log_subject;
DROP INDEX audit_log_object;
ALTER TABLE audit_log DROP COLUMN object_id;
ALTER TABLE audit_log DROP COLUMN object_type;
ALTER TABLE audit_log DROP COLUMN reason;
