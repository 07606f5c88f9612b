"""Helpers shared by the sub-commands."""

from __future__ import annotations

import json
import sys
from pathlib import Path

from edge_agent.icao.trust import TrustError, TrustStore
from edge_agent.trust_folder import load_trust_folder


class CliError(Exception):
    """Ends a command with a one-line message on standard error and ``exit_code``."""

    def __init__(self, message: str, exit_code: int = 2) -> None:
        super().__init__(" ".join(message.split()))
        self.exit_code = exit_code


def print_json(obj: object) -> None:
    """One JSON object on standard output, UTF-8 kept readable."""
    sys.stdout.write(json.dumps(obj, ensure_ascii=False, sort_keys=False) + "\n")
    sys.stdout.flush()


def load_trust(folder: Path | None) -> TrustStore | None:
    if folder is None:
        return None
    if not folder.is_dir():
        raise CliError(f"trust folder {folder} does not exist")
    try:
        return load_trust_folder(folder)
    except (TrustError, OSError) as exc:
        raise CliError(f"trust folder {folder}: {exc}") from None
