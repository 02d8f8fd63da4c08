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
