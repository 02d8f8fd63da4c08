-- How a tenant's public pages look: accent colour and logo (inlined, never fetched
-- from a third party).
CREATE TABLE tenant_branding (
    tenant_id      TEXT      NOT NULL REFERENCES tenants (id),
    display_name   TEXT,
    accent_color   TEXT,
    logo_type      TEXT,
    logo           BLOB,
    updated_at     TIMESTAMP NOT NULL,
    PRIMARY KEY (tenant_id)
);
