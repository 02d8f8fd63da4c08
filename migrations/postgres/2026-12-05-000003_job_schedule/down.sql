DROP TABLE job_schedule;
