-- Re-consent (issue 20): a consent purpose widened with people asked again. The
-- version they are asked to confirm, and the date after which a consent given
-- under an older version lapses, carry over to later versions until the next ask.
ALTER TABLE purposes ADD COLUMN reconsent_version INTEGER;
ALTER TABLE purposes ADD COLUMN reconsent_lapse_at TIMESTAMP;
ALTER TABLE group_purposes ADD COLUMN reconsent_version INTEGER;
ALTER TABLE group_purposes ADD COLUMN reconsent_lapse_at TIMESTAMP;

-- Why the system ended a consent (`term_ended`, `reconsent_not_confirmed`): part of
-- the chain from hash version 3 on.
ALTER TABLE consent_events ADD COLUMN reason TEXT;

-- Who still has to confirm: granted consents by purpose and the version given under.
CREATE INDEX consent_states_by_version ON consent_states (tenant_id, purpose_code, purpose_version)
    WHERE status = 'granted';
CREATE INDEX group_consent_states_by_version
    ON group_consent_states (group_id, purpose_code, purpose_version) WHERE status = 'granted';

-- The check also reads the channels of the version a consent was given under when
-- the purpose has changed since (`pv`, `gv`: only an older version joins): a
-- channel added later is not agreed to until the person confirms.
DROP FUNCTION assent_check_facts(TEXT, TEXT, TEXT, TEXT, TEXT, BYTEA);
CREATE FUNCTION assent_check_facts(p_tenant TEXT, p_group TEXT, p_code TEXT,
                                   p_subject TEXT, p_kind TEXT, p_digest BYTEA)
RETURNS TABLE (id TEXT, person_id TEXT, channels TEXT, restricted_at TIMESTAMP,
               erased_at TIMESTAMP, own_basis TEXT, own_channels TEXT,
               group_basis TEXT, group_channels TEXT, own_status TEXT,
               own_since TIMESTAMP, own_expires_at TIMESTAMP, group_status TEXT,
               group_since TIMESTAMP, group_expires_at TIMESTAMP,
               objected_at TIMESTAMP, own_granted_channels TEXT,
               group_granted_channels TEXT)
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
           o.created_at, pv.channels, gv.channels
      FROM subjects s
      LEFT JOIN purposes p
        ON p.tenant_id = s.tenant_id AND p.code = p_code AND p.is_current
      LEFT JOIN group_purposes gp
        ON gp.group_id = p_group AND gp.code = p_code AND gp.is_current
      LEFT JOIN consent_states cs
        ON cs.tenant_id = s.tenant_id AND cs.subject_id = s.id AND cs.purpose_code = p_code
      LEFT JOIN group_consent_states gs
        ON gs.group_id = p_group AND gs.person_id = s.person_id AND gs.purpose_code = p_code
      LEFT JOIN purposes pv
        ON pv.tenant_id = s.tenant_id AND pv.code = p_code AND pv.version = cs.purpose_version
       AND NOT pv.is_current
      LEFT JOIN group_purposes gv
        ON gv.group_id = p_group AND gv.code = p_code AND gv.version = gs.purpose_version
       AND NOT gv.is_current
      LEFT JOIN objections o
        ON o.tenant_id = s.tenant_id AND o.subject_id = s.id AND o.purpose_code = p_code
     WHERE s.tenant_id = p_tenant AND s.id = found;
END
$$;
