DROP TABLE idempotency_keys;
DROP TABLE api_keys;
DROP TABLE api_key_directory;
DROP TABLE tenants;
DROP TABLE tenant_groups;
