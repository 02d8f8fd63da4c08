DROP TABLE destruction_acts;
DROP TABLE subject_changes;
DROP TABLE rights_settings;
