-- Per-tenant settings of the notification engine.
CREATE TABLE notification_settings (
    tenant_id            TEXT      NOT NULL REFERENCES tenants (id),
    expiry_offsets       TEXT      NOT NULL,
    expiry_purpose       TEXT,
    hourly_send_quota    INTEGER,
    updated_at           TIMESTAMP NOT NULL,
    PRIMARY KEY (tenant_id)
);

-- The outbox. A row is written in the transaction of the change that causes it;
-- workers claim due rows with a lease, send, and record the outcome.
CREATE TABLE notifications (
    tenant_id        TEXT      NOT NULL REFERENCES tenants (id),
    id               TEXT      NOT NULL,
    subject_id       TEXT,
    kind             TEXT      NOT NULL,
    category         TEXT      NOT NULL,
    purpose_code     TEXT,
    channel          TEXT      NOT NULL,
    fallback_email   BOOLEAN   NOT NULL,
    locale           TEXT      NOT NULL,
    data             BYTEA,
    target           TEXT,
    idempotency_key  TEXT,
    source           TEXT,
    status           TEXT      NOT NULL,
    reason           TEXT,
    attempts         INTEGER   NOT NULL,
    max_attempts     INTEGER   NOT NULL,
    due_at           TIMESTAMP NOT NULL,
    lease_owner      TEXT,
    lease_until      TIMESTAMP,
    sent_channel     TEXT,
    sent_at          TIMESTAMP,
    created_at       TIMESTAMP NOT NULL,
    updated_at       TIMESTAMP NOT NULL,
    PRIMARY KEY (tenant_id, id)
);
CREATE UNIQUE INDEX notifications_idempotency ON notifications (tenant_id, idempotency_key);
CREATE INDEX notifications_due ON notifications (tenant_id, status, due_at);
CREATE INDEX notifications_subject ON notifications (tenant_id, subject_id, id);
CREATE INDEX notifications_source ON notifications (tenant_id, source);
CREATE INDEX notifications_sent ON notifications (tenant_id, status, sent_at);

-- Every delivery attempt: the delivery log of notices and webhooks.
CREATE TABLE notification_attempts (
    tenant_id       TEXT      NOT NULL REFERENCES tenants (id),
    notification_id TEXT      NOT NULL,
    attempt         INTEGER   NOT NULL,
    channel         TEXT      NOT NULL,
    outcome         TEXT      NOT NULL,
    detail          TEXT,
    at              TIMESTAMP NOT NULL,
    PRIMARY KEY (tenant_id, notification_id, attempt, channel, outcome)
);

-- A tenant's own templates, overriding the built-in ones or adding kinds.
CREATE TABLE templates (
    tenant_id  TEXT      NOT NULL REFERENCES tenants (id),
    kind       TEXT      NOT NULL,
    locale     TEXT      NOT NULL,
    subject    TEXT      NOT NULL,
    text_body  TEXT      NOT NULL,
    html_body  TEXT      NOT NULL,
    updated_at TIMESTAMP NOT NULL,
    PRIMARY KEY (tenant_id, kind, locale)
);

-- Subscriptions of subjects (policy 2.3): expiry notices are scheduled from them.
CREATE TABLE subscriptions (
    tenant_id    TEXT      NOT NULL REFERENCES tenants (id),
    id           TEXT      NOT NULL,
    subject_id   TEXT      NOT NULL,
    name         TEXT      NOT NULL,
    expires_at   TIMESTAMP NOT NULL,
    renew_url    TEXT,
    status       TEXT      NOT NULL,
    created_at   TIMESTAMP NOT NULL,
    updated_at   TIMESTAMP NOT NULL,
    PRIMARY KEY (tenant_id, id)
);
CREATE INDEX subscriptions_subject ON subscriptions (tenant_id, subject_id);

-- Telegram chats bound to subjects. Unreachable (bot blocked) is not a withdrawal.
CREATE TABLE telegram_chats (
    tenant_id      TEXT      NOT NULL REFERENCES tenants (id),
    subject_id     TEXT      NOT NULL,
    chat_id        BIGINT    NOT NULL,
    linked_at      TIMESTAMP NOT NULL,
    unreachable_at TIMESTAMP,
    PRIMARY KEY (tenant_id, subject_id, chat_id)
);
CREATE INDEX telegram_chats_chat ON telegram_chats (tenant_id, chat_id);

-- Addresses that must not be mailed again (repeated hard bounces, complaints,
-- erasure). Keyed by the blind index, never the address.
CREATE TABLE suppressions (
    tenant_id  TEXT      NOT NULL REFERENCES tenants (id),
    kind       TEXT      NOT NULL,
    digest     BYTEA     NOT NULL,
    bounces    INTEGER   NOT NULL,
    suppressed BOOLEAN   NOT NULL,
    reason     TEXT      NOT NULL,
    updated_at TIMESTAMP NOT NULL,
    PRIMARY KEY (tenant_id, kind, digest)
);

-- Webhook endpoints of tenant systems. The signing secret is derived from the
-- master key (tenant, id, secret_version), so it is never stored.
CREATE TABLE webhooks (
    tenant_id      TEXT      NOT NULL REFERENCES tenants (id),
    id             TEXT      NOT NULL,
    url            TEXT      NOT NULL,
    events         TEXT      NOT NULL,
    secret_version INTEGER   NOT NULL,
    active         BOOLEAN   NOT NULL,
    created_at     TIMESTAMP NOT NULL,
    PRIMARY KEY (tenant_id, id)
);
ALTER TABLE notification_settings ENABLE ROW LEVEL SECURITY;
ALTER TABLE notification_settings FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON notification_settings
    USING (tenant_id = current_setting('app.tenant_id', true))
    WITH CHECK (tenant_id = current_setting('app.tenant_id', true));
ALTER TABLE notifications ENABLE ROW LEVEL SECURITY;
ALTER TABLE notifications FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON notifications
    USING (tenant_id = current_setting('app.tenant_id', true))
    WITH CHECK (tenant_id = current_setting('app.tenant_id', true));
ALTER TABLE notification_attempts ENABLE ROW LEVEL SECURITY;
ALTER TABLE notification_attempts FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON notification_attempts
    USING (tenant_id = current_setting('app.tenant_id', true))
    WITH CHECK (tenant_id = current_setting('app.tenant_id', true));
ALTER TABLE templates ENABLE ROW LEVEL SECURITY;
ALTER TABLE templates FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON templates
    USING (tenant_id = current_setting('app.tenant_id', true))
    WITH CHECK (tenant_id = current_setting('app.tenant_id', true));
ALTER TABLE subscriptions ENABLE ROW LEVEL SECURITY;
ALTER TABLE subscriptions FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON subscriptions
    USING (tenant_id = current_setting('app.tenant_id', true))
    WITH CHECK (tenant_id = current_setting('app.tenant_id', true));
ALTER TABLE telegram_chats ENABLE ROW LEVEL SECURITY;
ALTER TABLE telegram_chats FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON telegram_chats
    USING (tenant_id = current_setting('app.tenant_id', true))
    WITH CHECK (tenant_id = current_setting('app.tenant_id', true));
ALTER TABLE suppressions ENABLE ROW LEVEL SECURITY;
ALTER TABLE suppressions FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON suppressions
    USING (tenant_id = current_setting('app.tenant_id', true))
    WITH CHECK (tenant_id = current_setting('app.tenant_id', true));
ALTER TABLE webhooks ENABLE ROW LEVEL SECURITY;
ALTER TABLE webhooks FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON webhooks
    USING (tenant_id = current_setting('app.tenant_id', true))
    WITH CHECK (tenant_id = current_setting('app.tenant_id', true));
