-- When the process running an import last showed progress: at start, a server fails
-- the imports it left behind when it was killed (and deletes their spool files);
-- another process's import counts as abandoned only once this is old.
ALTER TABLE imports ADD COLUMN heartbeat_at TIMESTAMP;
