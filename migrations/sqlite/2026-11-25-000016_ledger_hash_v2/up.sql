-- The rule an event's hash was computed with. Events before this migration keep v1
-- (receipt_id and import_key outside the hash); new events are written with v2,
-- which covers every column of the row but the hash itself.
ALTER TABLE consent_events ADD COLUMN hash_version INTEGER NOT NULL DEFAULT 1;
