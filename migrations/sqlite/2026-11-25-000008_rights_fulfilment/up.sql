-- Per-tenant settings of the rights-request clock: the term the company promises in
-- its own policy (the earliest deadline wins) and corrections to the built-in
-- production calendar (a decree moved a day).
CREATE TABLE rights_settings (
    tenant_id     TEXT      NOT NULL REFERENCES tenants (id),
    promise       TEXT,
    days_off      TEXT      NOT NULL,
    working_days  TEXT      NOT NULL,
    updated_at    TIMESTAMP NOT NULL,
    PRIMARY KEY (tenant_id)
);

-- Rectification history: which fields changed, when, by whom, on which request; the
-- previous values are sealed with the person's key (an erasure destroys them too).
CREATE TABLE subject_changes (
    tenant_id   TEXT      NOT NULL REFERENCES tenants (id),
    subject_id  TEXT      NOT NULL,
    seq         INTEGER   NOT NULL,
    request_id  TEXT,
    fields      TEXT      NOT NULL,
    previous    BLOB,
    actor       TEXT      NOT NULL,
    at          TIMESTAMP NOT NULL,
    PRIMARY KEY (tenant_id, subject_id, seq)
);

-- Destruction acts (152-FZ art. 21; Roskomnadzor order 179): what was destroyed, of
-- whom (by id, never by name), how, why, by whom and when. A retention run's dry run
-- is an act with status 'proposed'; carrying it out writes a 'done' act.
CREATE TABLE destruction_acts (
    tenant_id   TEXT      NOT NULL REFERENCES tenants (id),
    id          TEXT      NOT NULL,
    kind        TEXT      NOT NULL,
    status      TEXT      NOT NULL,
    request_id  TEXT,
    report_id   TEXT,
    subject_ids TEXT      NOT NULL,
    categories  TEXT      NOT NULL,
    method      TEXT      NOT NULL,
    reason      TEXT      NOT NULL,
    actor       TEXT      NOT NULL,
    notice_id   TEXT,
    created_at  TIMESTAMP NOT NULL,
    due_at      TIMESTAMP,
    done_at     TIMESTAMP,
    PRIMARY KEY (tenant_id, id)
);
CREATE INDEX destruction_acts_status ON destruction_acts (tenant_id, status, due_at);
