#!/usr/bin/env bash
# Restore a backup made by backup.sh into the database CENTRAL_TOML names. Stop the collector's
# web and ingest services first; start them again afterwards (ingest resumes from the broker's
# persistent session, and devices resend whatever the centre did not acknowledge).
#   deploy/backup/restore.sh CENTRAL_TOML BACKUP_FILE
set -euo pipefail
CONFIG="$1"; FILE="$2"
URL="$(python3 -c 'import sys,tomllib; print(tomllib.load(open(sys.argv[1],"rb")).get("database_url","sqlite:///var/central.sqlite3"))' "$CONFIG")"
case "$URL" in
  postgresql*)
    pg_url="${URL/postgresql+psycopg/postgresql}"
    pg_restore --clean --if-exists --no-owner --dbname="$pg_url" "$FILE" ;;
  sqlite*)
    db="${URL#sqlite:///}"
    cp "$db" "$db.before-restore" 2>/dev/null || true
    sqlite3 "$FILE" ".backup '$db'" ;;
esac
echo "restored $FILE"
