-- The state of the public rights-request form for an address no subject has
-- (`/r/{tenant_slug}`): kept like a real request's code (wrong codes counted, an
-- expiry, one per address and type while open, renewed when it lapsed), so an
-- unknown address answers exactly like a known one. `email_index` is the tenant's
-- blind index of the normalised address, never the address; rows whose code lapsed
-- more than a day ago are deleted.
CREATE TABLE rights_decoys (
    tenant_id        TEXT      NOT NULL REFERENCES tenants (id),
    id               TEXT      NOT NULL,
    email_index      BLOB      NOT NULL,
    kind             TEXT      NOT NULL,
    code_failures    INTEGER   NOT NULL,
    code_expires_at  TIMESTAMP NOT NULL,
    created_at       TIMESTAMP NOT NULL,
    PRIMARY KEY (tenant_id, id)
);
CREATE UNIQUE INDEX rights_decoys_address ON rights_decoys (tenant_id, email_index, kind);
CREATE INDEX rights_decoys_expiry ON rights_decoys (tenant_id, code_expires_at);
