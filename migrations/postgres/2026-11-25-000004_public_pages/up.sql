-- How a tenant's public pages look: accent colour and logo (inlined, never fetched
-- from a third party).
CREATE TABLE tenant_branding (
    tenant_id      TEXT      NOT NULL REFERENCES tenants (id),
    display_name   TEXT,
    accent_color   TEXT,
    logo_type      TEXT,
    logo           BYTEA,
    updated_at     TIMESTAMP NOT NULL,
    PRIMARY KEY (tenant_id)
);
ALTER TABLE tenant_branding ENABLE ROW LEVEL SECURITY;
ALTER TABLE tenant_branding FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON tenant_branding
    USING (tenant_id = current_setting('app.tenant_id', true))
    WITH CHECK (tenant_id = current_setting('app.tenant_id', true));
