#!/usr/bin/env bash
# Restore a backup made by backup.sh into the database CENTRAL_TOML names. Stop the collector's
# web and ingest services first; start them again afterwards (ingest resumes from the broker's
# persistent session, and devices resend whatever the centre did not acknowledge).
#   deploy/backup/restore.sh CENTRAL_TOML BACKUP_FILE
# PostgreSQL's password is read from PGPASSFILE, never passed on a command line.
set -euo pipefail
umask 077
[ "$#" -eq 2 ] || { echo "usage: $0 CENTRAL_TOML BACKUP_FILE" >&2; exit 2; }
CONFIG="$1"; FILE="$2"
[ -f "$FILE" ] || { echo "no backup file $FILE" >&2; exit 1; }
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=deploy/backup/pgenv.sh
source "$HERE/pgenv.sh"
URL="$(python3 -c 'import sys,tomllib; print(tomllib.load(open(sys.argv[1],"rb")).get("database_url","sqlite:///var/central.sqlite3"))' "$CONFIG")"
TMP="$(mktemp -d)"; trap 'rm -rf "$TMP"' EXIT
case "$URL" in
  postgresql*)
    pg_environment "$URL" "$TMP"
    # Not pg_restore --clean: it drops a month partition's inherited primary key before the
    # partition itself, which PostgreSQL refuses (events is partitioned by month). The schema
    # is emptied and the dump replayed in ONE transaction instead: a failure changes nothing.
    { echo "DROP SCHEMA public CASCADE; CREATE SCHEMA public;"
      pg_restore --no-owner --file=- "$FILE"; } |
      psql --no-psqlrc --quiet -v ON_ERROR_STOP=1 --single-transaction \
        --dbname="$PGDATABASE" >/dev/null ;;
  sqlite*)
    db="${URL#sqlite:///}"
    cp "$db" "$db.before-restore" 2>/dev/null || true
    sqlite3 "$db" ".restore '$FILE'" ;;
  *) echo "unknown database_url scheme in $CONFIG" >&2; exit 1 ;;
esac
echo "restored $FILE"
