-- Personal-data incidents (issue 21, item 5): what happened, the legal deadlines it
-- runs under (24 and 72 hours under 152-FZ, 72 under GDPR) and every step taken.
-- `description` is staff's account of the incident: the API asks that it hold no
-- affected person's data.
CREATE TABLE incidents (
    tenant_id          TEXT      NOT NULL REFERENCES tenants (id),
    id                 TEXT      NOT NULL,
    detected_at        TIMESTAMP NOT NULL,
    description        TEXT      NOT NULL,
    data_categories    TEXT      NOT NULL,
    affected_count     BIGINT    NOT NULL,
    identifiers_count  BIGINT,
    jurisdiction       TEXT      NOT NULL,
    created_at         TIMESTAMP NOT NULL,
    recorded_by        TEXT      NOT NULL,
    closed_at          TIMESTAMP,
    PRIMARY KEY (tenant_id, id)
);

-- Each deadline: met by its step (`met_at`), reminded once (`reminded_at`).
CREATE TABLE incident_deadlines (
    tenant_id    TEXT      NOT NULL,
    incident_id  TEXT      NOT NULL,
    kind         TEXT      NOT NULL,
    due_at       TIMESTAMP NOT NULL,
    met_at       TIMESTAMP,
    reminded_at  TIMESTAMP,
    PRIMARY KEY (tenant_id, incident_id, kind),
    FOREIGN KEY (tenant_id, incident_id) REFERENCES incidents (tenant_id, id)
);
CREATE INDEX incident_deadlines_open ON incident_deadlines (tenant_id, due_at) WHERE met_at IS NULL;

-- Every step, as recorded: never changed.
CREATE TABLE incident_steps (
    tenant_id    TEXT      NOT NULL,
    id           TEXT      NOT NULL,
    incident_id  TEXT      NOT NULL,
    kind         TEXT      NOT NULL,
    taken_at     TIMESTAMP NOT NULL,
    reference    TEXT,
    note         TEXT,
    recorded_at  TIMESTAMP NOT NULL,
    recorded_by  TEXT      NOT NULL,
    PRIMARY KEY (tenant_id, id),
    FOREIGN KEY (tenant_id, incident_id) REFERENCES incidents (tenant_id, id)
);
CREATE INDEX incident_steps_of ON incident_steps (tenant_id, incident_id, id);

ALTER TABLE incidents ENABLE ROW LEVEL SECURITY;
ALTER TABLE incidents FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON incidents
    USING (tenant_id = current_setting('app.tenant_id', true))
    WITH CHECK (tenant_id = current_setting('app.tenant_id', true));

ALTER TABLE incident_deadlines ENABLE ROW LEVEL SECURITY;
ALTER TABLE incident_deadlines FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON incident_deadlines
    USING (tenant_id = current_setting('app.tenant_id', true))
    WITH CHECK (tenant_id = current_setting('app.tenant_id', true));

ALTER TABLE incident_steps ENABLE ROW LEVEL SECURITY;
ALTER TABLE incident_steps FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON incident_steps
    USING (tenant_id = current_setting('app.tenant_id', true))
    WITH CHECK (tenant_id = current_setting('app.tenant_id', true));
