-- A lookup by blind index answers oldest first (ORDER BY id). With id in the index
-- the matching entries come already in order, so the planner needs no statistics
-- to prefer this index over walking the tenant's whole primary key.
DROP INDEX subjects_email;
CREATE INDEX subjects_email ON subjects (tenant_id, email_index, id);
DROP INDEX subjects_phone;
CREATE INDEX subjects_phone ON subjects (tenant_id, phone_index, id);
