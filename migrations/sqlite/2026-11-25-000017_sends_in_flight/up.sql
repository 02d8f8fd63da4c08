-- Sends to people in flight (see the PostgreSQL migration). SQLite keeps the table
-- for a schema of the same shape but leaves it empty: a single process holds the
-- people a send is in flight to in memory (`Store::hold_people`) instead.
CREATE TABLE sends_in_flight (
    tenant_id        TEXT      NOT NULL REFERENCES tenants (id),
    notification_id  TEXT      NOT NULL,
    attempt          INTEGER   NOT NULL,
    channel          TEXT      NOT NULL,
    subject_id       TEXT      NOT NULL,
    group_id         TEXT,
    person_id        TEXT,
    deadline         TIMESTAMP NOT NULL,
    PRIMARY KEY (tenant_id, notification_id, attempt, channel)
);
CREATE INDEX sends_in_flight_subject ON sends_in_flight (tenant_id, subject_id);
CREATE INDEX sends_in_flight_person ON sends_in_flight (group_id, person_id)
    WHERE group_id IS NOT NULL;
