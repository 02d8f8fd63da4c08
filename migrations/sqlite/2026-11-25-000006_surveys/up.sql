-- Satisfaction surveys (policy 2.2): NPS or CSAT, asked only of people whose
-- purpose allows it.
CREATE TABLE surveys (
    tenant_id           TEXT      NOT NULL REFERENCES tenants (id),
    code                TEXT      NOT NULL,
    kind                TEXT      NOT NULL,
    question_ru         TEXT      NOT NULL,
    question_en         TEXT      NOT NULL,
    follow_up_ru        TEXT,
    follow_up_en        TEXT,
    purpose_code        TEXT      NOT NULL,
    anonymous           BOOLEAN   NOT NULL,
    answer_days         INTEGER   NOT NULL,
    change_hours        INTEGER   NOT NULL,
    trigger_delay_hours INTEGER,
    trigger_period_days INTEGER,
    active              BOOLEAN   NOT NULL,
    created_at          TIMESTAMP NOT NULL,
    updated_at          TIMESTAMP NOT NULL,
    PRIMARY KEY (tenant_id, code)
);

-- One invitation per person and sending; it holds the answer while the answer may
-- change. The comment is sealed with the person's key, so erasure destroys it.
CREATE TABLE survey_invitations (
    tenant_id         TEXT      NOT NULL REFERENCES tenants (id),
    id                TEXT      NOT NULL,
    survey_code       TEXT      NOT NULL,
    subject_id        TEXT      NOT NULL,
    channel           TEXT      NOT NULL,
    notice_id         TEXT      NOT NULL,
    event_key         TEXT,
    send_at           TIMESTAMP NOT NULL,
    expires_at        TIMESTAMP NOT NULL,
    score             INTEGER,
    comment           BLOB,
    answered_channel  TEXT,
    first_answered_at TIMESTAMP,
    answered_at       TIMESTAMP,
    changes           INTEGER   NOT NULL,
    settled_at        TIMESTAMP,
    created_at        TIMESTAMP NOT NULL,
    PRIMARY KEY (tenant_id, id)
);
CREATE INDEX survey_invitations_subject ON survey_invitations (tenant_id, survey_code, subject_id, send_at);
CREATE UNIQUE INDEX survey_invitations_event ON survey_invitations (tenant_id, survey_code, event_key);
CREATE INDEX survey_invitations_settling ON survey_invitations (tenant_id, settled_at, first_answered_at);

-- Answers of anonymous surveys once settled: no person, no invitation, no time.
CREATE TABLE survey_anonymous_answers (
    tenant_id   TEXT      NOT NULL REFERENCES tenants (id),
    survey_code TEXT      NOT NULL,
    id          TEXT      NOT NULL,
    channel     TEXT      NOT NULL,
    score       INTEGER   NOT NULL,
    comment     TEXT,
    PRIMARY KEY (tenant_id, survey_code, id)
);
