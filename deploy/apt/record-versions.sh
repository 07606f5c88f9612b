#!/usr/bin/env bash
# Writes deploy/apt/tested-versions.txt: the installed version of every Debian package named in
# deploy/apt/*.txt, as dpkg reports it on the machine the suite was just run on. Run it after a
# green `bash deploy/test.sh` on Debian 12 and commit the file with the change that moved them.
#
# Usage: bash deploy/apt/record-versions.sh
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
OUT="$HERE/tested-versions.txt"
missing=0

{
    printf '# Debian packages the test suite was run against (written by deploy/apt/record-versions.sh).\n'
    printf '# %s; Debian %s; %s\n' "$(. /etc/os-release && echo "$PRETTY_NAME")" \
        "$(cat /etc/debian_version)" "$(dpkg --print-architecture)"
    venv_python="$HERE/../../.venv/bin/python"
    if [ -x "$venv_python" ]; then
        printf '# .venv runs Python %s\n' "$("$venv_python" -c 'import platform; print(platform.python_version())')"
    fi
    printf '# list\tpackage\tversion\tarchitecture\n'
    for list in "$HERE"/*.txt; do
        [ "$list" = "$OUT" ] && continue
        while read -r pkg; do
            line="$(dpkg-query -W -f='${Version}\t${Architecture}\t${Status}' "$pkg" 2>/dev/null || true)"
            if [[ "$line" != *"install ok installed" ]]; then
                printf '[record-versions] %s (%s) is not installed\n' "$pkg" "$(basename "$list")" >&2
                missing=1
                continue
            fi
            printf '%s\t%s\t%s\n' "$(basename "$list" .txt)" "$pkg" "${line%$'\t'*}"
        done < <(grep -vE '^\s*(#|$)' "$list")
    done
} > "$OUT.tmp"
if [ "$missing" -ne 0 ]; then
    rm -f "$OUT.tmp"
    printf '[record-versions] install the missing packages (bash deploy/test.sh does) and re-run\n' >&2
    exit 1
fi
mv "$OUT.tmp" "$OUT"
printf '[record-versions] written: %s\n' "${OUT#"$(cd "$HERE/../.." && pwd)/"}" >&2
