#!/usr/bin/env bash
# Back up the collector's database: pg_dump (custom format) for PostgreSQL, SQLite's online
# backup for SQLite. Keeps the last 14 backups. The data key (personal data at rest) is NOT in
# the dump: back it up separately, offline (docs/operations.md).
#   deploy/backup/backup.sh CENTRAL_TOML BACKUP_DIR
# PostgreSQL's password is read from PGPASSFILE (the unit sets /etc/cccd-checkin/pgpass), never
# passed on a command line.
set -euo pipefail
umask 077
[ "$#" -eq 2 ] || { echo "usage: $0 CENTRAL_TOML BACKUP_DIR" >&2; exit 2; }
CONFIG="$1"; DEST="$2"
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=deploy/backup/pgenv.sh
source "$HERE/pgenv.sh"
URL="$(python3 -c 'import sys,tomllib; print(tomllib.load(open(sys.argv[1],"rb")).get("database_url","sqlite:///var/central.sqlite3"))' "$CONFIG")"
STAMP="$(date -u +%Y%m%dT%H%M%SZ)"
mkdir -p "$DEST"; chmod 700 "$DEST"
TMP="$(mktemp -d)"; trap 'rm -rf "$TMP"' EXIT
case "$URL" in
  postgresql*)
    pg_environment "$URL" "$TMP"
    pg_dump --format=custom --no-owner --file="$DEST/central-$STAMP.pgdump.part"
    mv "$DEST/central-$STAMP.pgdump.part" "$DEST/central-$STAMP.pgdump" ;;
  sqlite*)
    db="${URL#sqlite:///}"
    sqlite3 "$db" ".backup '$DEST/central-$STAMP.sqlite3.part'"
    mv "$DEST/central-$STAMP.sqlite3.part" "$DEST/central-$STAMP.sqlite3" ;;
  *) echo "unknown database_url scheme in $CONFIG" >&2; exit 1 ;;
esac
# Keep the newest 14 (file names sort by their UTC time stamp).
shopt -s nullglob
backups=("$DEST"/central-*.pgdump "$DEST"/central-*.sqlite3)
mapfile -t backups < <(printf '%s\n' "${backups[@]}" | sort -r)
for old in "${backups[@]:14}"; do rm -- "$old"; done
echo "backup written: ${backups[0]}"
