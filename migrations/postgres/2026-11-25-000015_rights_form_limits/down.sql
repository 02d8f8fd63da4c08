DROP TABLE rights_form_limits;
ALTER TABLE rights_decoys DROP COLUMN code_failures_total;
ALTER TABLE rights_requests DROP COLUMN code_failures_total;
