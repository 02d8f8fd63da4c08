DROP TABLE processing_filings;
DROP TABLE operator_details;
