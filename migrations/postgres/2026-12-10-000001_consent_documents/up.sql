-- Consent as a separate document (152-FZ art. 9 part 4 as amended by 156-FZ): each
-- version of a purpose's document as it was agreed to, kept by its digest; a grant
-- names the digest, which the ledger's hash covers from version 4 on.
CREATE TABLE consent_documents (
    tenant_id TEXT NOT NULL REFERENCES tenants (id),
    purpose_code TEXT NOT NULL,
    version INTEGER NOT NULL,
    sha256 TEXT NOT NULL,
    -- The canonical JSON the digest is taken of.
    body TEXT NOT NULL,
    created_at TIMESTAMP NOT NULL,
    PRIMARY KEY (tenant_id, purpose_code, version),
    UNIQUE (tenant_id, purpose_code, sha256)
);

ALTER TABLE consent_documents ENABLE ROW LEVEL SECURITY;
ALTER TABLE consent_documents FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON consent_documents
    USING (tenant_id = current_setting('app.tenant_id', true))
    WITH CHECK (tenant_id = current_setting('app.tenant_id', true));

-- A purpose whose data people permit to be disseminated (152-FZ art. 10.1): its
-- consent is given item by item.
CREATE TABLE purpose_document_settings (
    tenant_id TEXT NOT NULL REFERENCES tenants (id),
    purpose_code TEXT NOT NULL,
    for_dissemination BOOLEAN NOT NULL,
    updated_at TIMESTAMP NOT NULL,
    PRIMARY KEY (tenant_id, purpose_code)
);

ALTER TABLE purpose_document_settings ENABLE ROW LEVEL SECURITY;
ALTER TABLE purpose_document_settings FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON purpose_document_settings
    USING (tenant_id = current_setting('app.tenant_id', true))
    WITH CHECK (tenant_id = current_setting('app.tenant_id', true));

ALTER TABLE consent_events ADD COLUMN consent_document TEXT;
