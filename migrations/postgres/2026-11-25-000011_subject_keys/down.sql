ALTER TABLE subjects ADD COLUMN wrapped_key BYTEA;
ALTER TABLE subjects NO FORCE ROW LEVEL SECURITY;
ALTER TABLE subject_keys NO FORCE ROW LEVEL SECURITY;
UPDATE subjects s SET wrapped_key = k.wrapped_key
    FROM subject_keys k WHERE k.tenant_id = s.tenant_id AND k.subject_id = s.id;
ALTER TABLE subjects FORCE ROW LEVEL SECURITY;
DROP TABLE subject_keys;
