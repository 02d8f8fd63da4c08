-- Rights requests (policy 6.2-6.4): what a person asked, since when the legal clock
-- runs, where the request is, and the identity check. Details and the one-time code
-- are sealed with the person's key, so an erasure destroys them.
CREATE TABLE rights_requests (
    tenant_id       TEXT      NOT NULL REFERENCES tenants (id),
    id              TEXT      NOT NULL,
    subject_id      TEXT      NOT NULL,
    kind            TEXT      NOT NULL,
    status          TEXT      NOT NULL,
    channel         TEXT      NOT NULL,
    received_at     TIMESTAMP NOT NULL,
    due_at          TIMESTAMP NOT NULL,
    extended        BOOLEAN   NOT NULL,
    representative  BOOLEAN   NOT NULL,
    duplicate_of    TEXT,
    details         BYTEA,
    code            BYTEA,
    code_expires_at TIMESTAMP,
    code_failures   INTEGER   NOT NULL,
    reminded_at     TIMESTAMP,
    created_at      TIMESTAMP NOT NULL,
    updated_at      TIMESTAMP NOT NULL,
    closed_at       TIMESTAMP,
    PRIMARY KEY (tenant_id, id)
);
CREATE INDEX rights_requests_due ON rights_requests (tenant_id, status, due_at);
CREATE INDEX rights_requests_subject ON rights_requests (tenant_id, subject_id, kind);

-- Every step of a request: who, when, why (policy 6.3).
CREATE TABLE rights_request_events (
    tenant_id   TEXT      NOT NULL REFERENCES tenants (id),
    request_id  TEXT      NOT NULL,
    seq         INTEGER   NOT NULL,
    step        TEXT      NOT NULL,
    from_status TEXT,
    to_status   TEXT      NOT NULL,
    actor       TEXT      NOT NULL,
    reason      TEXT,
    at          TIMESTAMP NOT NULL,
    PRIMARY KEY (tenant_id, request_id, seq)
);
ALTER TABLE rights_requests ENABLE ROW LEVEL SECURITY;
ALTER TABLE rights_requests FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON rights_requests
    USING (tenant_id = current_setting('app.tenant_id', true))
    WITH CHECK (tenant_id = current_setting('app.tenant_id', true));
ALTER TABLE rights_request_events ENABLE ROW LEVEL SECURITY;
ALTER TABLE rights_request_events FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON rights_request_events
    USING (tenant_id = current_setting('app.tenant_id', true))
    WITH CHECK (tenant_id = current_setting('app.tenant_id', true));
