-- Disclosures recorded by a bulk import carry the line's idempotency key (the
-- source's id of the disclosure, or a digest of a dated line), so the same file
-- imported again records nothing twice. Absent for those recorded one by one;
-- unique per tenant when present (NULLs never collide).
ALTER TABLE disclosures ADD COLUMN import_key TEXT;
CREATE UNIQUE INDEX disclosures_import ON disclosures (tenant_id, import_key);
