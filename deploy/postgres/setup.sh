#!/usr/bin/env bash
# Create the collector's PostgreSQL role and database (run as root on the database host).
#   deploy/postgres/setup.sh [DB_NAME] [ROLE]
# Prints the database_url for /etc/cccd-checkin/central.toml (no password in it) and the line
# for /etc/cccd-checkin/pgpass (libpq's password file, mode 0600, owner cccd-central), then run
# `central migrate`. PGHOST / PGPORT select the server as for psql (default: the local one).
set -euo pipefail
DB="${1:-cccd_checkin}"
ROLE="${2:-cccd_central}"
command -v psql >/dev/null || { echo "install PostgreSQL first: apt-get install postgresql" >&2; exit 1; }
PASSWORD="$(head -c 24 /dev/urandom | base64 | tr -d '/+=')"
runuser -u postgres -- psql -q -v ON_ERROR_STOP=1 >&2 <<SQL
DO \$\$ BEGIN
  IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '${ROLE}') THEN
    CREATE ROLE ${ROLE} LOGIN PASSWORD '${PASSWORD}';
  ELSE
    ALTER ROLE ${ROLE} PASSWORD '${PASSWORD}';
  END IF;
END \$\$;
SELECT 'CREATE DATABASE ${DB} OWNER ${ROLE} ENCODING ''UTF8'' TEMPLATE template0'
WHERE NOT EXISTS (SELECT FROM pg_database WHERE datname = '${DB}')\gexec
REVOKE ALL ON DATABASE ${DB} FROM PUBLIC;
SQL
PORT="${PGPORT:-5432}"
echo "database_url = \"postgresql+psycopg://${ROLE}@127.0.0.1:${PORT}/${DB}\""
echo "127.0.0.1:${PORT}:${DB}:${ROLE}:${PASSWORD}"
