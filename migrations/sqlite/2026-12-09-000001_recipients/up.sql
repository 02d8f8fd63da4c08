-- The register of recipients and the disclosures made to them (issue 21: policy 4;
-- GDPR arts. 15(1)(c) and 30; 152-FZ arts. 12 and 14 part 7).

-- Companies and authorities the tenant discloses personal data to. `purposes` and
-- `data_categories` are JSON arrays of what it receives; `cross_border` is computed
-- from the tenant's law and `country`; `adequate` is as the company said it. A recipient with disclosures is never
-- deleted, only retired (`retired_at`): the record of who received data outlives
-- the contract. `affiliate_tenant_id` is the group member an affiliate is.
CREATE TABLE recipients (
    tenant_id                 TEXT      NOT NULL REFERENCES tenants (id),
    id                        TEXT      NOT NULL,
    name                      TEXT      NOT NULL,
    kind                      TEXT      NOT NULL,
    country                   TEXT      NOT NULL,
    cross_border              BOOLEAN   NOT NULL,
    adequate                  BOOLEAN   NOT NULL,
    transfer_notice_filed_on  DATE,
    contract_number           TEXT,
    contract_date             DATE,
    contract_until            DATE,
    purposes                  TEXT      NOT NULL,
    data_categories           TEXT      NOT NULL,
    affiliate_tenant_id       TEXT,
    created_at                TIMESTAMP NOT NULL,
    updated_at                TIMESTAMP NOT NULL,
    retired_at                TIMESTAMP,
    PRIMARY KEY (tenant_id, id)
);

-- Each occasion a person's data went to a recipient: which categories (JSON array),
-- for which purpose and version (the one the person agreed to, for consent), on
-- which legal basis, when, and which key recorded it; with the recipient as the
-- register named it then (a later change to the register rewrites no history).
-- Kept when the person is erased (the subject row stays as a tombstone): who
-- received data is what an authority asks about afterwards.
CREATE TABLE disclosures (
    tenant_id         TEXT      NOT NULL REFERENCES tenants (id),
    id                TEXT      NOT NULL,
    subject_id        TEXT      NOT NULL,
    recipient_id      TEXT      NOT NULL,
    recipient_name    TEXT      NOT NULL,
    recipient_kind    TEXT      NOT NULL,
    recipient_country TEXT      NOT NULL,
    cross_border      BOOLEAN   NOT NULL,
    purpose_code      TEXT      NOT NULL,
    purpose_version   INTEGER   NOT NULL,
    legal_basis       TEXT      NOT NULL,
    data_categories   TEXT      NOT NULL,
    occurred_at       TIMESTAMP NOT NULL,
    recorded_at       TIMESTAMP NOT NULL,
    recorded_by       TEXT      NOT NULL,
    PRIMARY KEY (tenant_id, id),
    FOREIGN KEY (tenant_id, subject_id) REFERENCES subjects (tenant_id, id),
    FOREIGN KEY (tenant_id, recipient_id) REFERENCES recipients (tenant_id, id)
);
CREATE INDEX disclosures_by_subject ON disclosures (tenant_id, subject_id, id);
CREATE INDEX disclosures_by_recipient ON disclosures (tenant_id, recipient_id);
