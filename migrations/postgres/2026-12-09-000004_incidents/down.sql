DROP TABLE incident_steps;
DROP TABLE incident_deadlines;
DROP TABLE incidents;
