# Sourced by backup.sh and restore.sh. pg_environment URL TMPDIR exports libpq's connection
# variables (PGHOST, PGPORT, PGUSER, PGDATABASE) for a database_url, so that no password ever
# appears on a command line (where every local user sees it in ps). The password comes from
# the PGPASSFILE the unit names (docs/operations.md); a database_url that still carries one
# has it written to a private password file in TMPDIR, which then becomes PGPASSFILE.
pg_environment() {
  local url="$1" tmp="$2" line
  while IFS= read -r line; do
    export "${line?}"
  done < <(python3 - "$url" "$tmp" <<'PY'
import sys
from pathlib import Path
from urllib.parse import unquote, urlsplit

parts = urlsplit(sys.argv[1])
if not parts.scheme.startswith("postgresql") or not parts.path.strip("/"):
    sys.exit(f"not a PostgreSQL database_url with a database name: {parts.scheme}://…")
host, port = parts.hostname or "", str(parts.port or 5432)
user, database = unquote(parts.username or ""), unquote(parts.path.strip("/"))
for name, value in (("PGHOST", host), ("PGPORT", port), ("PGUSER", user),
                    ("PGDATABASE", database)):
    if value:
        print(f"{name}={value}")
if parts.password is not None:
    def field(text: str) -> str:
        return text.replace("\\", "\\\\").replace(":", "\\:")
    passfile = Path(sys.argv[2]) / "pgpass"
    passfile.touch(mode=0o600)
    passfile.write_text(":".join(field(v) for v in (host or "*", port, database, user or "*",
                                                    unquote(parts.password))) + "\n")
    print(f"PGPASSFILE={passfile}")
PY
  )
}
