DROP TABLE group_purpose_codes;
ALTER TABLE group_purposes DROP COLUMN owner_tenant_id;
