-- Sends to people in flight, each with the deadline by which it has returned or been
-- cut off. The dispatcher's share locks fence a send only while its connection lives;
-- a change to a person (a withdrawal, objection, restriction, erasure) also waits,
-- after taking the subject's row lock, until no send to them is here with a deadline
-- still ahead, so it is never acknowledged while a send may still be under way. A
-- row lives from the attempt's `sending` mark to its outcome; the group columns let
-- an affiliate's change see the other tenants' sends to the same person.
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
ALTER TABLE sends_in_flight ENABLE ROW LEVEL SECURITY;
ALTER TABLE sends_in_flight FORCE ROW LEVEL SECURITY;
-- A tenant sees its own sends, and its group's sends to people the group shares (a
-- row without a person concerns no one else). It writes only its own rows, in its
-- own group, with a deadline near enough that a forged row cannot hold a person for
-- long (a send's deadline is at most half a lease, itself at most an hour).
CREATE POLICY tenant_or_group ON sends_in_flight
    USING (tenant_id = current_setting('app.tenant_id', true)
           OR (person_id IS NOT NULL
               AND group_id = NULLIF(current_setting('app.group_id', true), '')))
    WITH CHECK (tenant_id = current_setting('app.tenant_id', true)
                AND (group_id IS NULL
                     OR group_id = NULLIF(current_setting('app.group_id', true), ''))
                AND deadline <= (now() AT TIME ZONE 'UTC') + interval '1 hour');
