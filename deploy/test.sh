#!/usr/bin/env bash
# The whole test suite: installs what it needs, then runs pytest. Extra arguments go to pytest
# (e.g. `bash deploy/test.sh -m unit` for the fast unit suite alone).
set -euo pipefail
PROFILE=test source "$(dirname "${BASH_SOURCE[0]}")/setup.sh"
cd "$REPO_ROOT"
exec "$VENV/bin/python" -m pytest "$@"
