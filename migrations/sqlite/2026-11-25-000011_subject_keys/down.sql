ALTER TABLE subjects ADD COLUMN wrapped_key BLOB;
UPDATE subjects SET wrapped_key = (
    SELECT k.wrapped_key FROM subject_keys k
    WHERE k.tenant_id = subjects.tenant_id AND k.subject_id = subjects.id);
DROP TABLE subject_keys;
