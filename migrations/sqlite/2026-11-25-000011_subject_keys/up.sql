-- Subject data keys (wrapped with the tenant's key) live apart from the ciphertext
-- they open, so destroying a person's key is one small delete that an operator can
-- also apply to a restored backup, and `subject_keys` can be backed up on its own,
-- shorter schedule (README: Erasure and backups). A subject without a row here has
-- been erased: what its key sealed is unreadable everywhere. No foreign key to
-- `subjects`, so the two can be restored from backups of different ages.
CREATE TABLE subject_keys (
    tenant_id    TEXT      NOT NULL REFERENCES tenants (id),
    subject_id   TEXT      NOT NULL,
    wrapped_key  BLOB      NOT NULL,
    created_at   TIMESTAMP NOT NULL,
    PRIMARY KEY (tenant_id, subject_id)
);
INSERT INTO subject_keys (tenant_id, subject_id, wrapped_key, created_at)
    SELECT tenant_id, id, wrapped_key, created_at FROM subjects WHERE wrapped_key IS NOT NULL;
ALTER TABLE subjects DROP COLUMN wrapped_key;
