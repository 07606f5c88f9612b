#!/usr/bin/env bash
# Back up the collector's database: pg_dump (custom format) for PostgreSQL, SQLite's online
# backup for SQLite. Keeps the last 14 backups. The data key (personal data at rest) is NOT in
# the dump: back it up separately, offline (docs/operations.md).
#   deploy/backup/backup.sh CENTRAL_TOML BACKUP_DIR
set -euo pipefail
CONFIG="$1"; DEST="$2"
URL="$(python3 -c 'import sys,tomllib; print(tomllib.load(open(sys.argv[1],"rb")).get("database_url","sqlite:///var/central.sqlite3"))' "$CONFIG")"
STAMP="$(date -u +%Y%m%dT%H%M%SZ)"
mkdir -p "$DEST"; chmod 700 "$DEST"
case "$URL" in
  postgresql*)
    pg_url="${URL/postgresql+psycopg/postgresql}"
    pg_dump --format=custom --no-owner --file="$DEST/central-$STAMP.pgdump" "$pg_url" ;;
  sqlite*)
    db="${URL#sqlite:///}"
    sqlite3 "$db" ".backup '$DEST/central-$STAMP.sqlite3'" ;;
  *) echo "unknown database_url $URL" >&2; exit 1 ;;
esac
ls -1t "$DEST"/central-* | tail -n +15 | xargs -r rm --
echo "backup written: $(ls -1t "$DEST"/central-* | head -1)"
