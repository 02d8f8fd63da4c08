-- Rolling back drops event reasons: ledger events of hash version 3 that carry one
-- (expiries since this migration) no longer verify. Roll back only before any exist.
DROP INDEX group_consent_states_by_version;
DROP INDEX consent_states_by_version;
ALTER TABLE consent_events DROP COLUMN reason;
ALTER TABLE group_purposes DROP COLUMN reconsent_lapse_at;
ALTER TABLE group_purposes DROP COLUMN reconsent_version;
ALTER TABLE purposes DROP COLUMN reconsent_lapse_at;
ALTER TABLE purposes DROP COLUMN reconsent_version;
