-- Records of processing (issue 21, item 4): the operator's own details, and each
-- filing of the records with the regulator, as filed, so that what changed since
-- can be shown.

-- The operator's details beyond the registers (name, address, INN, OGRN, the
-- person responsible, where the databases are, protection measures): one JSON
-- document per company (`assent_core::processing::OperatorDetails`).
CREATE TABLE operator_details (
    tenant_id   TEXT      NOT NULL PRIMARY KEY REFERENCES tenants (id),
    content     TEXT      NOT NULL,
    updated_at  TIMESTAMP NOT NULL
);

-- A filing: the records exactly as they were filed (JSON) with their hash.
CREATE TABLE processing_filings (
    tenant_id       TEXT      NOT NULL REFERENCES tenants (id),
    id              TEXT      NOT NULL,
    content         TEXT      NOT NULL,
    content_sha256  TEXT      NOT NULL,
    filed_on        DATE      NOT NULL,
    reference       TEXT,
    recorded_at     TIMESTAMP NOT NULL,
    recorded_by     TEXT      NOT NULL,
    PRIMARY KEY (tenant_id, id)
);

ALTER TABLE operator_details ENABLE ROW LEVEL SECURITY;
ALTER TABLE operator_details FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON operator_details
    USING (tenant_id = current_setting('app.tenant_id', true))
    WITH CHECK (tenant_id = current_setting('app.tenant_id', true));

ALTER TABLE processing_filings ENABLE ROW LEVEL SECURITY;
ALTER TABLE processing_filings FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON processing_filings
    USING (tenant_id = current_setting('app.tenant_id', true))
    WITH CHECK (tenant_id = current_setting('app.tenant_id', true));
