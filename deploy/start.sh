#!/usr/bin/env bash
# The main job: installs what it needs, then runs the whole system on this machine.
# Extra arguments go to `edge-agent demo` (e.g. `--duration 60 --check`).
set -euo pipefail
PROFILE=run source "$(dirname "${BASH_SOURCE[0]}")/setup.sh"
cd "$REPO_ROOT"
exec "$VENV/bin/edge-agent" demo "$@"
