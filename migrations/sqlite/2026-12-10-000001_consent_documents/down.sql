ALTER TABLE consent_events DROP COLUMN consent_document;
DROP TABLE purpose_document_settings;
DROP TABLE consent_documents;
