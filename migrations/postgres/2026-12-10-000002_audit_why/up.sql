-- Why staff acted and on which register row (policy 5.2), and nobody changes the log.
ALTER TABLE audit_log ADD COLUMN reason TEXT;
ALTER TABLE audit_log ADD COLUMN object_type TEXT;
ALTER TABLE audit_log ADD COLUMN object_id TEXT;
CREATE INDEX audit_log_object ON audit_log (tenant_id, object_type, object_id);
CREATE INDEX audit_log_subject ON audit_log (tenant_id, subject_id);

-- Append-only: no retention purge deletes audit rows, so nothing may, not even the
-- application's own role (which owns the tables and so holds every grant).
CREATE FUNCTION audit_log_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'audit_log is append-only' USING ERRCODE = 'insufficient_privilege';
END
$$;
CREATE TRIGGER audit_log_append_only BEFORE UPDATE OR DELETE ON audit_log
    FOR EACH ROW EXECUTE FUNCTION audit_log_append_only();
CREATE TRIGGER audit_log_no_truncate BEFORE TRUNCATE ON audit_log
    FOR EACH STATEMENT EXECUTE FUNCTION audit_log_append_only();
