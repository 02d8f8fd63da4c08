#!/bin/sh
# Run once by the postgres image on an empty data directory (docker-entrypoint-initdb.d).
# Assent connects as `assent`: not superuser, not BYPASSRLS, so row-level security holds
# between tenants. It owns its own database (migrations create its tables) and nothing else.
set -eu
psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname postgres \
  -v pw="$ASSENT_DB_PASSWORD" <<'SQL'
CREATE ROLE assent LOGIN NOSUPERUSER NOBYPASSRLS NOCREATEDB NOCREATEROLE PASSWORD :'pw';
CREATE DATABASE assent OWNER assent;
REVOKE ALL ON DATABASE assent FROM PUBLIC;
SQL
