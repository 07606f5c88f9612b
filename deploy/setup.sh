#!/usr/bin/env bash
# Shared set-up for deploy/start.sh and deploy/test.sh: installs the Debian packages a profile
# needs (only those missing), then creates or refreshes the virtual environment at .venv in the
# repository root from requirements.lock, with hash checking (both profiles install the whole lock:
# the main job and the tests run against the same versions). Idempotent: a second run installs
# nothing and takes a few seconds. The lock is re-resolved by `bash deploy/lock.sh`.
#
# Usage (sourced):  PROFILE=run|test source deploy/setup.sh
set -euo pipefail

REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
PROFILE="${PROFILE:-run}"
VENV="$REPO_ROOT/.venv"
LOCK="$REPO_ROOT/requirements.lock"

log() { printf '[setup] %s\n' "$*" >&2; }

apt_packages() {
    local list="$REPO_ROOT/deploy/apt/$1.txt"
    [ -f "$list" ] && grep -vE '^\s*(#|$)' "$list" || true
}

install_debian_packages() {
    local wanted=() missing=() pkg
    mapfile -t wanted < <(apt_packages common; apt_packages "$PROFILE")
    for pkg in "${wanted[@]}"; do
        dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'install ok installed' || missing+=("$pkg")
    done
    if [ "${#missing[@]}" -eq 0 ]; then
        log "Debian packages present (${#wanted[@]})"
        return
    fi
    if [ "$(id -u)" -ne 0 ]; then
        log "missing Debian packages: ${missing[*]}; run as root (or with sudo) to install them"
        exit 1
    fi
    log "installing Debian packages: ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

pick_python() {
    local candidate
    for candidate in python3.11 python3.12 python3.13 python3; do
        if command -v "$candidate" >/dev/null 2>&1 &&
           "$candidate" -c 'import sys, venv, ensurepip; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then
            command -v "$candidate"
            return
        fi
    done
    log "no Python 3.11+ with venv found"
    exit 1
}

# The lock's entry for one package: its pinned line and its hashes.
lock_entry() {
    awk -v name="$1" '
        /^[^ #]/ { keep = (tolower($0) ~ ("^" name "==")) }
        keep && !/^ *#/ { print }
    ' "$LOCK"
}

# Uninstalls what the lock no longer names (after an upgrade), so the environment is the lock.
remove_unlocked() {
    local unlocked=()
    mapfile -t unlocked < <("$VENV/bin/python" - "$LOCK" <<'PY'
import re
import sys
from importlib.metadata import distributions

def norm(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()

with open(sys.argv[1], encoding="utf-8") as lock:
    pinned = {norm(m) for m in re.findall(r"^([A-Za-z0-9][A-Za-z0-9._-]*)(?:\[[^\]]*\])?==", lock.read(), re.M)}
pinned.add("cccd-checkin")
for dist in distributions():
    if norm(dist.metadata["Name"]) not in pinned:
        print(dist.metadata["Name"])
PY
)
    if [ "${#unlocked[@]}" -gt 0 ]; then
        log "removing packages the lock does not name: ${unlocked[*]}"
        "$VENV/bin/python" -m pip uninstall -q -y "${unlocked[@]}"
    fi
}

# Installs requirements.lock with hash checking, then the project itself (editable, no
# dependencies). pip, setuptools and wheel come from the lock first, so the packages built from
# source (pyscard, evdev, pyDes) and the project build with locked tools and nothing is fetched
# that the lock does not pin by hash. The stamp holds the lock's and pyproject.toml's hashes and
# the profile: a second run with nothing changed installs nothing.
refresh_venv() {
    local stamp="$VENV/.installed" want boot pip=("$VENV/bin/python" -m pip)
    want="$PROFILE:$(cat "$LOCK" "$REPO_ROOT/pyproject.toml" | sha256sum | cut -d' ' -f1)"
    if [ -x "$VENV/bin/python" ] && "$VENV/bin/python" -c 'import edge_agent' 2>/dev/null &&
       [ -f "$stamp" ] && grep -qxF "$want" "$stamp"; then
        log "virtual environment up to date"
        return
    fi
    if [ ! -x "$VENV/bin/python" ] || ! "$VENV/bin/python" -c 'import sys' 2>/dev/null; then
        log "creating virtual environment at .venv"
        rm -rf "$VENV"
        "$(pick_python)" -m venv "$VENV"
    fi
    rm -f "$stamp"
    boot="$(mktemp)"
    { lock_entry pip; lock_entry setuptools; lock_entry wheel; } > "$boot"
    log "installing pip, setuptools and wheel from requirements.lock"
    "${pip[@]}" install -q --require-hashes --no-deps -r "$boot"
    rm -f "$boot"
    log "installing requirements.lock into .venv (profile $PROFILE)"
    "${pip[@]}" install -q --require-hashes --no-build-isolation -r "$LOCK"
    remove_unlocked
    log "installing the project into .venv"
    boot="$(mktemp)"
    if ! (cd "$REPO_ROOT" && "${pip[@]}" install -q --no-deps --no-build-isolation -e .) >"$boot" 2>&1; then
        cat "$boot" >&2
        rm -f "$boot"
        exit 1
    fi
    rm -f "$boot"
    "${pip[@]}" check >/dev/null
    echo "$want" > "$stamp"
}

install_debian_packages
refresh_venv
# Hook for later profiles (e.g. a browser for the UI tests) that need more than apt and pip.
if [ -x "$REPO_ROOT/deploy/setup-extra.sh" ]; then
    PROFILE="$PROFILE" VENV="$VENV" "$REPO_ROOT/deploy/setup-extra.sh"
fi
