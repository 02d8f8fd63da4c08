DROP INDEX notifications_webhooks_due;
DROP INDEX notifications_people_due;
DROP INDEX notifications_source_status;
DROP TABLE subject_tags;
DROP TABLE campaigns;
