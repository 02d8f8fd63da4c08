DROP TABLE sends_in_flight;
