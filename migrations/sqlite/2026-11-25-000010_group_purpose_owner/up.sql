-- A group purpose is changed only by the company that owns it (the one that
-- created it). Group purposes defined before this: the group's first company
-- (usually the holding that set the group up) owns them.
ALTER TABLE group_purposes ADD COLUMN owner_tenant_id TEXT;
UPDATE group_purposes SET owner_tenant_id = (
    SELECT id FROM tenants WHERE tenants.group_id = group_purposes.group_id
    ORDER BY created_at, id LIMIT 1
);

-- The codes of the own purposes of each company of a group, so a group purpose is
-- never created under a code an affiliate already uses (the group's purpose would be
-- shadowed there) and vice versa. Written with the purpose.
CREATE TABLE group_purpose_codes (
    group_id  TEXT NOT NULL REFERENCES tenant_groups (id),
    code      TEXT NOT NULL,
    tenant_id TEXT NOT NULL REFERENCES tenants (id),
    PRIMARY KEY (group_id, code, tenant_id)
);
INSERT INTO group_purpose_codes (group_id, code, tenant_id)
    SELECT DISTINCT t.group_id, p.code, p.tenant_id
    FROM purposes p JOIN tenants t ON t.id = p.tenant_id
    WHERE t.group_id IS NOT NULL;
