ALTER TABLE consent_events DROP COLUMN hash_version;
