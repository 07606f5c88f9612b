#!/usr/bin/env bash
# Re-resolves requirements.lock, the hash-pinned list of every Python package deploy/setup.sh
# installs (the project's dependencies, its `test` extra, its build back end and pip itself).
#
#   bash deploy/lock.sh                         # upgrade every pin to the newest allowed release
#   bash deploy/lock.sh --no-upgrade            # re-lock after editing pyproject.toml, keeping pins
#   bash deploy/lock.sh -P cryptography         # upgrade one package (and what it needs)
#
# Arguments replace the default `--upgrade` and go to pip-compile. pip-tools runs from a throw-away
# virtual environment under Python 3.11 (Debian 12's), so the lock resolves for the interpreter the
# project runs on. The resolution reads PyPI (or PIP_INDEX_URL) only: local pip configuration files
# and find-links directories are ignored, so no locally built wheel ends up among the hashes.
# Afterwards run `bash deploy/test.sh` (it installs the new lock) and commit requirements.lock.
set -euo pipefail

REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
PIP_TOOLS_VERSION="7.7.0"

log() { printf '[lock] %s\n' "$*" >&2; }

python=""
for candidate in python3.11 python3; do
    if command -v "$candidate" >/dev/null 2>&1 &&
       "$candidate" -c 'import sys, venv, ensurepip; sys.exit(sys.version_info[:2] != (3, 11))' 2>/dev/null; then
        python="$(command -v "$candidate")"
        break
    fi
done
if [ -z "$python" ]; then
    log "the lock is resolved with Python 3.11 (Debian 12's python3); none found"
    exit 1
fi

export PIP_CONFIG_FILE=/dev/null PIP_DISABLE_PIP_VERSION_CHECK=1
unset PIP_FIND_LINKS PIP_EXTRA_INDEX_URL PIP_CONSTRAINT PIP_REQUIRE_VIRTUALENV

tools="$(mktemp -d)"
trap 'rm -rf "$tools"' EXIT
log "pip-tools $PIP_TOOLS_VERSION in a throw-away environment ($("$python" -V))"
"$python" -m venv "$tools/venv"
"$tools/venv/bin/python" -m pip install -q "pip-tools==$PIP_TOOLS_VERSION"

[ "$#" -eq 0 ] && set -- --upgrade
cd "$REPO_ROOT"
log "resolving requirements.lock ($*)"
CUSTOM_COMPILE_COMMAND="bash deploy/lock.sh" "$tools/venv/bin/pip-compile" \
    --quiet --no-config \
    --generate-hashes --allow-unsafe --extra test \
    --no-emit-index-url --no-emit-trusted-host --no-emit-find-links \
    --no-strip-extras --newline lf \
    --cache-dir "$tools/cache" \
    --output-file requirements.lock \
    "$@" pyproject.toml deploy/lock.in
log "written: requirements.lock ($(grep -c '^[a-z0-9]' requirements.lock) packages)"
