-- Rolling back drops event reasons: ledger events of hash version 3 that carry one
-- (expiries since this migration) no longer verify. Roll back only before any exist.
DROP FUNCTION assent_check_facts(TEXT, TEXT, TEXT, TEXT, TEXT, BYTEA);
CREATE FUNCTION assent_check_facts(p_tenant TEXT, p_group TEXT, p_code TEXT,
                                   p_subject TEXT, p_kind TEXT, p_digest BYTEA)
RETURNS TABLE (id TEXT, person_id TEXT, channels TEXT, restricted_at TIMESTAMP,
               erased_at TIMESTAMP, own_basis TEXT, own_channels TEXT,
               group_basis TEXT, group_channels TEXT, own_status TEXT,
               own_since TIMESTAMP, own_expires_at TIMESTAMP, group_status TEXT,
               group_since TIMESTAMP, group_expires_at TIMESTAMP,
               objected_at TIMESTAMP)
LANGUAGE plpgsql VOLATILE SET search_path = pg_catalog, public AS $$
DECLARE
    found TEXT;
BEGIN
    PERFORM set_config('app.tenant_id', p_tenant, true),
            set_config('app.group_id', p_group, true);
    -- A blind index names the oldest subject holding it.
    IF p_subject IS NOT NULL THEN
        found := p_subject;
    ELSIF p_kind = 'email' THEN
        SELECT s.id INTO found FROM subjects s
         WHERE s.tenant_id = p_tenant AND s.email_index = p_digest ORDER BY s.id LIMIT 1;
    ELSIF p_kind = 'phone' THEN
        SELECT s.id INTO found FROM subjects s
         WHERE s.tenant_id = p_tenant AND s.phone_index = p_digest ORDER BY s.id LIMIT 1;
    ELSIF p_kind = 'external_ref' THEN
        SELECT s.id INTO found FROM subjects s
         WHERE s.tenant_id = p_tenant AND s.external_ref_index = p_digest
         ORDER BY s.id LIMIT 1;
    END IF;
    IF found IS NULL THEN
        RETURN;
    END IF;
    RETURN QUERY
    SELECT s.id, s.person_id, s.channels, s.restricted_at, s.erased_at,
           p.legal_basis, p.channels, gp.legal_basis, gp.channels,
           cs.status, cs.since, cs.expires_at, gs.status, gs.since, gs.expires_at,
           o.created_at
      FROM subjects s
      LEFT JOIN purposes p
        ON p.tenant_id = s.tenant_id AND p.code = p_code AND p.is_current
      LEFT JOIN group_purposes gp
        ON gp.group_id = p_group AND gp.code = p_code AND gp.is_current
      LEFT JOIN consent_states cs
        ON cs.tenant_id = s.tenant_id AND cs.subject_id = s.id AND cs.purpose_code = p_code
      LEFT JOIN group_consent_states gs
        ON gs.group_id = p_group AND gs.person_id = s.person_id AND gs.purpose_code = p_code
      LEFT JOIN objections o
        ON o.tenant_id = s.tenant_id AND o.subject_id = s.id AND o.purpose_code = p_code
     WHERE s.tenant_id = p_tenant AND s.id = found;
END
$$;

DROP INDEX group_consent_states_by_version;
DROP INDEX consent_states_by_version;
ALTER TABLE consent_events DROP COLUMN reason;
ALTER TABLE group_purposes DROP COLUMN reconsent_lapse_at;
ALTER TABLE group_purposes DROP COLUMN reconsent_version;
ALTER TABLE purposes DROP COLUMN reconsent_lapse_at;
ALTER TABLE purposes DROP COLUMN reconsent_version;
