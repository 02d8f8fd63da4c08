-- The company's website (issue 19): banner versions, each visitor's answers, and
-- which person a visitor turned out to be.

-- Versions of a company's banner and consent forms. `content` is exactly what
-- visitors are shown (texts in both languages, categories and the purposes their
-- answers are recorded for, forms); `content_sha256` is its hash, kept with every
-- answer given to it. Origins are where it may run: not shown, so not hashed.
CREATE TABLE banners (
    tenant_id       TEXT      NOT NULL REFERENCES tenants (id),
    version         INTEGER   NOT NULL,
    content         TEXT      NOT NULL,
    content_sha256  TEXT      NOT NULL,
    origins         TEXT      NOT NULL,
    warnings        TEXT      NOT NULL,
    created_at      TIMESTAMP NOT NULL,
    PRIMARY KEY (tenant_id, version)
);

-- Each answer a visitor gave to a banner version or one of its forms. `granted`
-- and `refused` are sets of cookie categories (bits: analytics 1, marketing 2,
-- personalisation 4); a form's answers are in `form_answers` (JSON). `previous`
-- is the visitor's answer before this one ('' for the first): unique, so of two
-- requests racing to follow the same answer one records and the other is told
-- what was recorded. `evidence` (truncated address, user agent) is sealed.
CREATE TABLE visitor_choices (
    tenant_id       TEXT      NOT NULL REFERENCES tenants (id),
    id              TEXT      NOT NULL,
    visitor_id      TEXT      NOT NULL,
    previous        TEXT      NOT NULL,
    banner_version  INTEGER   NOT NULL,
    kind            TEXT      NOT NULL,
    form            TEXT,
    granted         INTEGER   NOT NULL,
    refused         INTEGER   NOT NULL,
    form_answers    TEXT,
    gpc             BOOLEAN   NOT NULL,
    lang            TEXT      NOT NULL,
    origin          TEXT      NOT NULL,
    evidence        BLOB,
    occurred_at     TIMESTAMP NOT NULL,
    PRIMARY KEY (tenant_id, id),
    FOREIGN KEY (tenant_id, banner_version) REFERENCES banners (tenant_id, version)
);
CREATE UNIQUE INDEX visitor_choices_order ON visitor_choices (tenant_id, visitor_id, previous);
CREATE INDEX visitor_choices_by_time ON visitor_choices (tenant_id, occurred_at);

-- A visitor the company learned the identity of: their answers are the subject's.
CREATE TABLE visitor_links (
    tenant_id   TEXT      NOT NULL,
    visitor_id  TEXT      NOT NULL,
    subject_id  TEXT      NOT NULL,
    linked_at   TIMESTAMP NOT NULL,
    PRIMARY KEY (tenant_id, visitor_id),
    FOREIGN KEY (tenant_id, subject_id) REFERENCES subjects (tenant_id, id)
);
CREATE INDEX visitor_links_by_subject ON visitor_links (tenant_id, subject_id);
