-- Budgets of wrong one-time codes (issue 15, hole 12). A request and a decoy keep
-- the wrong codes of their whole life besides those of the current code, so filing
-- again does not give fresh guesses without end.
ALTER TABLE rights_requests ADD COLUMN code_failures_total INTEGER NOT NULL DEFAULT 0;
ALTER TABLE rights_decoys ADD COLUMN code_failures_total INTEGER NOT NULL DEFAULT 0;
-- What the public rights form (`/r/{tenant_slug}`) allows one address, known or
-- not: wrong codes, and new codes sent in the current window. `email_index` is the
-- tenant's blind index of the normalised address, never the address; a row is
-- deleted 30 days after its last change, and on erasure of a person with the address.
CREATE TABLE rights_form_limits (
    tenant_id          TEXT      NOT NULL REFERENCES tenants (id),
    email_index        BLOB      NOT NULL,
    wrong_codes        INTEGER   NOT NULL,
    codes_sent         INTEGER   NOT NULL,
    window_started_at  TIMESTAMP NOT NULL,
    updated_at         TIMESTAMP NOT NULL,
    PRIMARY KEY (tenant_id, email_index)
);
CREATE INDEX rights_form_limits_updated ON rights_form_limits (tenant_id, updated_at);
