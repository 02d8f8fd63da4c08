-- PostgreSQL only (a check in one round trip, scope included); SQLite has no
-- round trips to save. Kept so both lists stay in step.
SELECT 1;
