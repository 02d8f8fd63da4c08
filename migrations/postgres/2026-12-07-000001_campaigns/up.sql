-- Campaigns (issue 20): one message to everyone an audience names, through the
-- consent gate, at a capped rate. Each message is a notice in the outbox whose
-- `source` is `campaign:<id>` and whose idempotency key names the person, so a
-- person gets one message per campaign whatever is retried.

-- `audience` is the JSON the tenant sent (purposes, locales, tags, subject ids);
-- `context` what every message of the campaign is filled with (`data`), e.g. the
-- summary of a policy change. `audience_size` is set when the start has queued it.
CREATE TABLE campaigns (
    tenant_id        TEXT      NOT NULL REFERENCES tenants (id),
    id               TEXT      NOT NULL,
    name             TEXT      NOT NULL,
    kind             TEXT      NOT NULL,
    purpose_code     TEXT,
    template         TEXT      NOT NULL,
    audience         TEXT      NOT NULL,
    channel          TEXT      NOT NULL,
    send_at          TIMESTAMP,
    rate_per_minute  INTEGER   NOT NULL,
    context          TEXT      NOT NULL,
    status           TEXT      NOT NULL,
    audience_size    BIGINT,
    -- The tenant's last ledger entry when the start began: withdrawals through
    -- the campaign's links are looked for after it.
    ledger_seq       BIGINT,
    started_at       TIMESTAMP,
    paused_at        TIMESTAMP,
    finished_at      TIMESTAMP,
    created_at       TIMESTAMP NOT NULL,
    updated_at       TIMESTAMP NOT NULL,
    PRIMARY KEY (tenant_id, id)
);
CREATE INDEX campaigns_by_status ON campaigns (tenant_id, status);
CREATE INDEX campaigns_by_time ON campaigns (tenant_id, created_at);

-- Labels on subjects for narrowing audiences (`vip`, `plan:pro`): never personal.
CREATE TABLE subject_tags (
    tenant_id   TEXT NOT NULL,
    subject_id  TEXT NOT NULL,
    tag         TEXT NOT NULL,
    PRIMARY KEY (tenant_id, subject_id, tag),
    FOREIGN KEY (tenant_id, subject_id) REFERENCES subjects (tenant_id, id)
);
CREATE INDEX subject_tags_by_tag ON subject_tags (tenant_id, tag, subject_id);

-- What a worker claims next, per lane: a walk of queued notices in due order
-- that does not pass the other lane's (a campaign of 100,000 due notices must not
-- slow a webhook claim, nor the claim sort them all).
CREATE INDEX notifications_people_due ON notifications (tenant_id, due_at)
    WHERE status = 'queued' AND channel <> 'webhook';
CREATE INDEX notifications_webhooks_due ON notifications (tenant_id, due_at)
    WHERE status = 'queued' AND channel = 'webhook';

-- A campaign's results count its notices by status and reason.
CREATE INDEX notifications_source_status ON notifications (tenant_id, source, status, reason);

ALTER TABLE campaigns ENABLE ROW LEVEL SECURITY;
ALTER TABLE campaigns FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON campaigns
    USING (tenant_id = current_setting('app.tenant_id', true))
    WITH CHECK (tenant_id = current_setting('app.tenant_id', true));

ALTER TABLE subject_tags ENABLE ROW LEVEL SECURITY;
ALTER TABLE subject_tags FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON subject_tags
    USING (tenant_id = current_setting('app.tenant_id', true))
    WITH CHECK (tenant_id = current_setting('app.tenant_id', true));
