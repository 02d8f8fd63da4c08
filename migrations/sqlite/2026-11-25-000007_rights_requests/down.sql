DROP TABLE rights_request_events;
DROP TABLE rights_requests;
