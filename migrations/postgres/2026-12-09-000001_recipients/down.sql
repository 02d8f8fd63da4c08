DROP TABLE disclosures;
DROP TABLE recipients;
