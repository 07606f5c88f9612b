#!/usr/bin/env bash
# Shared set-up for deploy/start.sh and deploy/test.sh: installs the Debian packages a profile
# needs (only those missing), then creates or refreshes the virtual environment at .venv in the
# repository root. Idempotent: a second run installs nothing and takes a few seconds.
#
# Usage (sourced):  PROFILE=run|test source deploy/setup.sh
set -euo pipefail

REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
PROFILE="${PROFILE:-run}"
VENV="$REPO_ROOT/.venv"

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

refresh_venv() {
    local stamp="$VENV/.installed" want
    if [ ! -x "$VENV/bin/python" ] || ! "$VENV/bin/python" -c 'import sys' 2>/dev/null; then
        log "creating virtual environment at .venv"
        rm -rf "$VENV"
        "$(pick_python)" -m venv "$VENV"
        "$VENV/bin/python" -m pip install -q --upgrade pip
    fi
    want="$PROFILE:$(sha256sum "$REPO_ROOT/pyproject.toml" | cut -d' ' -f1)"
    if [ -f "$stamp" ] && grep -qxF "$want" "$stamp" && "$VENV/bin/python" -c 'import edge_agent' 2>/dev/null; then
        log "virtual environment up to date"
        return
    fi
    local extras=""
    [ "$PROFILE" = "test" ] && extras="[test]"
    log "installing the project into .venv (profile $PROFILE)"
    (cd "$REPO_ROOT" && "$VENV/bin/python" -m pip install -q -e ".$extras")
    echo "$want" > "$stamp"
}

install_debian_packages
refresh_venv
# Hook for later profiles (e.g. a browser for the UI tests) that need more than apt and pip.
if [ -x "$REPO_ROOT/deploy/setup-extra.sh" ]; then
    PROFILE="$PROFILE" VENV="$VENV" "$REPO_ROOT/deploy/setup-extra.sh"
fi
