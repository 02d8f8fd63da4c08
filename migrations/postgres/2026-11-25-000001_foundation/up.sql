-- Installation-level registry: groups of affiliated companies and their tenants.
CREATE TABLE tenant_groups (
    id         TEXT      NOT NULL PRIMARY KEY,
    name       TEXT      NOT NULL,
    created_at TIMESTAMP NOT NULL
);

CREATE TABLE tenants (
    id             TEXT      NOT NULL PRIMARY KEY,
    slug           TEXT      NOT NULL UNIQUE,
    legal_name     TEXT      NOT NULL,
    group_id       TEXT      REFERENCES tenant_groups (id),
    jurisdiction   TEXT      NOT NULL,
    timezone       TEXT      NOT NULL,
    default_locale TEXT      NOT NULL,
    created_at     TIMESTAMP NOT NULL
);

-- Maps a client id to its tenant so the token endpoint can find the key before it
-- knows the tenant. Holds no secret.
CREATE TABLE api_key_directory (
    client_id TEXT NOT NULL PRIMARY KEY,
    tenant_id TEXT NOT NULL REFERENCES tenants (id)
);

CREATE TABLE api_keys (
    tenant_id     TEXT      NOT NULL REFERENCES tenants (id),
    id            TEXT      NOT NULL,
    role          TEXT      NOT NULL,
    label         TEXT      NOT NULL,
    secret_digest BYTEA     NOT NULL,
    created_at    TIMESTAMP NOT NULL,
    revoked_at    TIMESTAMP,
    last_used_at  TIMESTAMP,
    PRIMARY KEY (tenant_id, id)
);

-- Responses of creating POSTs, replayed when a client repeats an Idempotency-Key.
CREATE TABLE idempotency_keys (
    tenant_id      TEXT      NOT NULL REFERENCES tenants (id),
    key            TEXT      NOT NULL,
    scope          TEXT      NOT NULL,
    request_digest BYTEA     NOT NULL,
    status         INTEGER   NOT NULL,
    response_body  TEXT      NOT NULL,
    created_at     TIMESTAMP NOT NULL,
    PRIMARY KEY (tenant_id, key)
);

-- Row-level security on every tenant-owned table: a unit of work sees only the rows
-- of the tenant it set with set_config('app.tenant_id', ..., true); without the
-- setting current_setting(..., true) is NULL or '' and matches nothing.
ALTER TABLE api_keys ENABLE ROW LEVEL SECURITY;
ALTER TABLE api_keys FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON api_keys
    USING (tenant_id = current_setting('app.tenant_id', true))
    WITH CHECK (tenant_id = current_setting('app.tenant_id', true));

ALTER TABLE idempotency_keys ENABLE ROW LEVEL SECURITY;
ALTER TABLE idempotency_keys FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON idempotency_keys
    USING (tenant_id = current_setting('app.tenant_id', true))
    WITH CHECK (tenant_id = current_setting('app.tenant_id', true));
