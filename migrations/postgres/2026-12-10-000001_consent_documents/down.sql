ALTER TABLE consent_events DROP COLUMN consent_document;
DROP TABLE consent_documents;
