DROP INDEX disclosures_import;
ALTER TABLE disclosures DROP COLUMN import_key;
