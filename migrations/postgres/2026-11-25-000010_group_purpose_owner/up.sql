-- A group purpose is changed only by the company that owns it (the one that
-- created it). Group purposes defined before this: the group's first company
-- (usually the holding that set the group up) owns them.
ALTER TABLE group_purposes ADD COLUMN owner_tenant_id TEXT REFERENCES tenants (id);

-- The codes of the own purposes of each company of a group, so a group purpose is
-- never created under a code an affiliate already uses (the group's purpose would be
-- shadowed there) and vice versa. Written with the purpose, under a per-group lock.
CREATE TABLE group_purpose_codes (
    group_id  TEXT NOT NULL REFERENCES tenant_groups (id),
    code      TEXT NOT NULL,
    tenant_id TEXT NOT NULL REFERENCES tenants (id),
    PRIMARY KEY (group_id, code, tenant_id)
);
ALTER TABLE group_purpose_codes ENABLE ROW LEVEL SECURITY;
ALTER TABLE group_purpose_codes FORCE ROW LEVEL SECURITY;
CREATE POLICY group_isolation ON group_purpose_codes
    USING (group_id = current_setting('app.group_id', true))
    WITH CHECK (group_id = current_setting('app.group_id', true));

-- Existing rows, one company at a time in its own scope (row-level security holds
-- for this role too), oldest company first.
DO $$
DECLARE
    t RECORD;
BEGIN
    FOR t IN SELECT id, group_id FROM tenants WHERE group_id IS NOT NULL ORDER BY created_at, id LOOP
        PERFORM set_config('app.tenant_id', t.id, true);
        PERFORM set_config('app.group_id', t.group_id, true);
        INSERT INTO group_purpose_codes (group_id, code, tenant_id)
            SELECT DISTINCT t.group_id, code, t.id FROM purposes WHERE tenant_id = t.id;
        UPDATE group_purposes SET owner_tenant_id = t.id
            WHERE group_id = t.group_id AND owner_tenant_id IS NULL;
    END LOOP;
    PERFORM set_config('app.tenant_id', '', true);
    PERFORM set_config('app.group_id', '', true);
END $$;
