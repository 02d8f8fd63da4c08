-- PostgreSQL only (a function that locks a subject and reads it in one round
-- trip); SQLite has no round trips to save. Kept so both lists stay in step.
SELECT 1;
