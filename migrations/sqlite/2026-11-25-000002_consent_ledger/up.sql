-- Purposes of one tenant. Each change of meaning is a new version; exactly one
-- version per code is current.
CREATE TABLE purposes (
    tenant_id         TEXT      NOT NULL REFERENCES tenants (id),
    code              TEXT      NOT NULL,
    version           INTEGER   NOT NULL,
    is_current        BOOLEAN   NOT NULL,
    name_ru           TEXT      NOT NULL,
    name_en           TEXT      NOT NULL,
    legal_basis       TEXT      NOT NULL,
    channels          TEXT      NOT NULL,
    data_categories   TEXT      NOT NULL,
    retention_days    INTEGER   NOT NULL,
    consent_term_days INTEGER,
    created_at        TIMESTAMP NOT NULL,
    PRIMARY KEY (tenant_id, code, version)
);

-- Purposes shared by every tenant of a group (e.g. marketing by all affiliates).
-- Group-owned: keyed by group_id, visible to the group's tenants.
CREATE TABLE group_purposes (
    group_id          TEXT      NOT NULL REFERENCES tenant_groups (id),
    code              TEXT      NOT NULL,
    version           INTEGER   NOT NULL,
    is_current        BOOLEAN   NOT NULL,
    name_ru           TEXT      NOT NULL,
    name_en           TEXT      NOT NULL,
    legal_basis       TEXT      NOT NULL,
    channels          TEXT      NOT NULL,
    data_categories   TEXT      NOT NULL,
    retention_days    INTEGER   NOT NULL,
    consent_term_days INTEGER,
    created_at        TIMESTAMP NOT NULL,
    PRIMARY KEY (group_id, code, version)
);

CREATE TABLE policies (
    tenant_id    TEXT      NOT NULL REFERENCES tenants (id),
    version      TEXT      NOT NULL,
    url          TEXT,
    body         TEXT,
    body_sha256  TEXT,
    effective_at TIMESTAMP NOT NULL,
    material     BOOLEAN   NOT NULL,
    created_at   TIMESTAMP NOT NULL,
    PRIMARY KEY (tenant_id, version)
);

-- Data subjects. Personal data is sealed in `pii` with the subject's own key,
-- itself wrapped by the tenant key; lookups go through keyed blind indexes.
CREATE TABLE subjects (
    tenant_id          TEXT      NOT NULL REFERENCES tenants (id),
    id                 TEXT      NOT NULL,
    person_id          TEXT,
    external_ref_index BLOB ,
    email_index        BLOB ,
    phone_index        BLOB ,
    wrapped_key        BLOB ,
    pii                BLOB ,
    locale             TEXT,
    timezone           TEXT,
    channels           TEXT      NOT NULL,
    restricted_at      TIMESTAMP,
    created_at         TIMESTAMP NOT NULL,
    updated_at         TIMESTAMP NOT NULL,
    erased_at          TIMESTAMP,
    PRIMARY KEY (tenant_id, id)
);
CREATE UNIQUE INDEX subjects_external_ref ON subjects (tenant_id, external_ref_index);
CREATE INDEX subjects_email ON subjects (tenant_id, email_index);
CREATE INDEX subjects_phone ON subjects (tenant_id, phone_index);
CREATE INDEX subjects_person ON subjects (tenant_id, person_id);

-- The same email or phone at two affiliates is one person of the group.
CREATE TABLE group_identities (
    group_id  TEXT  NOT NULL REFERENCES tenant_groups (id),
    kind      TEXT  NOT NULL,
    digest    BLOB  NOT NULL,
    person_id TEXT  NOT NULL,
    PRIMARY KEY (group_id, kind, digest)
);

CREATE TABLE objections (
    tenant_id    TEXT      NOT NULL REFERENCES tenants (id),
    subject_id   TEXT      NOT NULL,
    purpose_code TEXT      NOT NULL,
    created_at   TIMESTAMP NOT NULL,
    PRIMARY KEY (tenant_id, subject_id, purpose_code)
);

-- The ledger: append-only, numbered and hash-chained per tenant.
CREATE TABLE consent_events (
    tenant_id       TEXT      NOT NULL REFERENCES tenants (id),
    seq             BIGINT    NOT NULL,
    id              TEXT      NOT NULL,
    receipt_id      TEXT      NOT NULL,
    subject_id      TEXT      NOT NULL,
    purpose_scope   TEXT      NOT NULL,
    purpose_code    TEXT      NOT NULL,
    purpose_version INTEGER   NOT NULL,
    action          TEXT      NOT NULL,
    method          TEXT      NOT NULL,
    actor_kind      TEXT      NOT NULL,
    policy_version  TEXT,
    payload         BLOB ,
    payload_digest  BLOB      NOT NULL,
    occurred_at     TIMESTAMP NOT NULL,
    recorded_at     TIMESTAMP NOT NULL,
    expires_at      TIMESTAMP,
    import_key      TEXT,
    prev_hash       BLOB      NOT NULL,
    hash            BLOB      NOT NULL,
    PRIMARY KEY (tenant_id, seq)
);
CREATE UNIQUE INDEX consent_events_id ON consent_events (tenant_id, id);
CREATE UNIQUE INDEX consent_events_receipt ON consent_events (tenant_id, receipt_id);
CREATE UNIQUE INDEX consent_events_import ON consent_events (tenant_id, import_key);
CREATE INDEX consent_events_subject ON consent_events (tenant_id, subject_id, seq);

CREATE TABLE ledger_heads (
    tenant_id TEXT   NOT NULL REFERENCES tenants (id),
    seq       BIGINT NOT NULL,
    hash      BLOB   NOT NULL,
    PRIMARY KEY (tenant_id)
);

-- Current state per (subject, purpose), updated in the transaction of each event.
CREATE TABLE consent_states (
    tenant_id       TEXT      NOT NULL REFERENCES tenants (id),
    subject_id      TEXT      NOT NULL,
    purpose_code    TEXT      NOT NULL,
    status          TEXT      NOT NULL,
    since           TIMESTAMP NOT NULL,
    expires_at      TIMESTAMP,
    purpose_version INTEGER   NOT NULL,
    policy_version  TEXT,
    last_event_id   TEXT      NOT NULL,
    PRIMARY KEY (tenant_id, subject_id, purpose_code)
);
CREATE INDEX consent_states_expiry ON consent_states (tenant_id, status, expires_at);

-- State of group purposes per person of the group: a grant at any affiliate
-- covers the group, a withdrawal at any affiliate withdraws it everywhere.
CREATE TABLE group_consent_states (
    group_id        TEXT      NOT NULL REFERENCES tenant_groups (id),
    person_id       TEXT      NOT NULL,
    purpose_code    TEXT      NOT NULL,
    status          TEXT      NOT NULL,
    since           TIMESTAMP NOT NULL,
    expires_at      TIMESTAMP,
    purpose_version INTEGER   NOT NULL,
    policy_version  TEXT,
    last_event_id   TEXT      NOT NULL,
    last_tenant_id  TEXT      NOT NULL,
    last_subject_id TEXT      NOT NULL,
    PRIMARY KEY (group_id, person_id, purpose_code)
);
CREATE INDEX group_consent_states_expiry ON group_consent_states (group_id, status, expires_at);

-- Who read whose personal data, when (policy 5.2).
CREATE TABLE audit_log (
    tenant_id  TEXT      NOT NULL REFERENCES tenants (id),
    id         TEXT      NOT NULL,
    actor      TEXT      NOT NULL,
    action     TEXT      NOT NULL,
    subject_id TEXT,
    at         TIMESTAMP NOT NULL,
    PRIMARY KEY (tenant_id, id)
);

CREATE TABLE imports (
    tenant_id    TEXT      NOT NULL REFERENCES tenants (id),
    id           TEXT      NOT NULL,
    status       TEXT      NOT NULL,
    format       TEXT      NOT NULL,
    lines_total  BIGINT    NOT NULL,
    lines_ok     BIGINT    NOT NULL,
    lines_failed BIGINT    NOT NULL,
    errors       TEXT      NOT NULL,
    created_at   TIMESTAMP NOT NULL,
    finished_at  TIMESTAMP,
    PRIMARY KEY (tenant_id, id)
);

-- SQLite has no row-level security; the store filters every query by tenant and group.
