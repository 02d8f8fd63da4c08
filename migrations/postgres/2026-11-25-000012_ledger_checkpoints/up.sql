-- Signed checkpoints of each tenant's ledger: (seq, head hash, time) signed with an
-- Ed25519 key derived from the master key, which is never stored here. A copy in
-- the database is a convenience; the guarantee comes from copies kept elsewhere
-- (API, webhook, `assent ledger checkpoint --out`).
CREATE TABLE ledger_checkpoints (
    tenant_id   TEXT      NOT NULL REFERENCES tenants (id),
    seq         BIGINT    NOT NULL,
    head_hash   BYTEA     NOT NULL,
    created_at  TIMESTAMP NOT NULL,
    signature   BYTEA     NOT NULL,
    PRIMARY KEY (tenant_id, seq)
);
ALTER TABLE ledger_checkpoints ENABLE ROW LEVEL SECURITY;
ALTER TABLE ledger_checkpoints FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON ledger_checkpoints
    USING (tenant_id = current_setting('app.tenant_id', true))
    WITH CHECK (tenant_id = current_setting('app.tenant_id', true));
