DROP TABLE tenant_branding;
