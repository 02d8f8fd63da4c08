-- Why staff acted and on which register row (policy 5.2), and nobody changes the log.
ALTER TABLE audit_log ADD COLUMN reason TEXT;
ALTER TABLE audit_log ADD COLUMN object_type TEXT;
ALTER TABLE audit_log ADD COLUMN object_id TEXT;
CREATE INDEX audit_log_object ON audit_log (tenant_id, object_type, object_id);
CREATE INDEX audit_log_subject ON audit_log (tenant_id, subject_id);

-- Append-only: no retention purge deletes audit rows, so nothing may.
CREATE TRIGGER audit_log_no_update BEFORE UPDATE ON audit_log
BEGIN
    SELECT RAISE(ABORT, 'audit_log is append-only');
END;
CREATE TRIGGER audit_log_no_delete BEFORE DELETE ON audit_log
BEGIN
    SELECT RAISE(ABORT, 'audit_log is append-only');
END;
