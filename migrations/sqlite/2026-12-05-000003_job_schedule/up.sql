-- When each periodic job (expiry sweep, reminders, destructions, checkpoints, ...)
-- is next due, installation-wide. Every worker process ticks; the one whose update
-- moves `next_due_at` past now runs the job, the others see it no longer due. So a
-- job runs once per interval however many workers there are, and a worker that dies
-- mid-run leaves the job to whoever ticks after the next due time. A registry table:
-- it belongs to no tenant, and holds no personal data.
CREATE TABLE job_schedule (
    job           TEXT      NOT NULL PRIMARY KEY,
    next_due_at   TIMESTAMP NOT NULL,
    claimed_at    TIMESTAMP,
    claimed_by    TEXT
);
