-- Production calendars the operator imports (issue 21, item 7): one country's year
-- as a government decree fixed it, loaded the day it is published without a
-- release (`assent calendar import FILE`). A year here replaces the built-in list of
-- that year for every tenant; tenants' own corrections (rights_settings) still apply
-- on top. A registry table: it belongs to no tenant, and holds no personal data.
-- `days_off` and `working_weekends` are comma-separated dates (YYYY-MM-DD), as in
-- rights_settings; `source` names the decree (number and date).
CREATE TABLE calendar_years (
    country           TEXT      NOT NULL,
    year              INTEGER   NOT NULL,
    days_off          TEXT      NOT NULL,
    working_weekends  TEXT      NOT NULL,
    source            TEXT      NOT NULL,
    imported_at       TIMESTAMP NOT NULL,
    PRIMARY KEY (country, year)
);
