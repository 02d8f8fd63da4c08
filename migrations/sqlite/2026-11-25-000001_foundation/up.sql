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
    secret_digest BLOB      NOT NULL,
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
    request_digest BLOB      NOT NULL,
    status         INTEGER   NOT NULL,
    response_body  TEXT      NOT NULL,
    created_at     TIMESTAMP NOT NULL,
    PRIMARY KEY (tenant_id, key)
);

-- SQLite has no row-level security; the store filters every query by tenant.
