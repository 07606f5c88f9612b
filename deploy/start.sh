#!/usr/bin/env bash
# The main job: installs what it needs, then runs the whole system on this machine: a broker,
# the collector, five simulated gates and desks at two sites, and visitor traffic.
# Extra arguments go to `cccd-demo` (demo/cli.py; e.g. `--duration 60 --check`).
set -euo pipefail
PROFILE=run source "$(dirname "${BASH_SOURCE[0]}")/setup.sh"
cd "$REPO_ROOT"
exec "$VENV/bin/cccd-demo" "$@"
