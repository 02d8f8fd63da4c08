DROP INDEX notifications_source_status;
DROP TABLE subject_tags;
DROP TABLE campaigns;
