DROP INDEX subjects_email;
CREATE INDEX subjects_email ON subjects (tenant_id, email_index);
DROP INDEX subjects_phone;
CREATE INDEX subjects_phone ON subjects (tenant_id, phone_index);
