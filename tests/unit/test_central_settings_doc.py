"""The collector's settings: the example in central/settings.py parses to the defaults, and
docs/central-configuration.md documents exactly the keys the loader accepts."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path
from typing import Any

import pytest

import central.settings
from central.settings import CentralSettings, SettingsError, settings_from_dict

ROOT = Path(__file__).resolve().parents[2]


def _example() -> dict[str, Any]:
    doc = central.settings.__doc__ or ""
    block = doc.split("::", 1)[1].split("Every error", 1)[0]
    text = "\n".join(line[4:] for line in block.splitlines())
    return tomllib.loads(text)


def _keys(data: dict[str, Any], prefix: str = "") -> set[str]:
    out: set[str] = set()
    for key, value in data.items():
        out |= _keys(value, f"{prefix}{key}.") if isinstance(value, dict) else {prefix + key}
    return out


def test_the_docstring_example_gives_the_defaults() -> None:
    settings = settings_from_dict(_example(), Path("/"))
    default = CentralSettings()
    for name in ("database_url", "max_future_skew", "batch_size", "batch_ms", "heartbeat_s",
                 "offline_after_heartbeats", "seq_gap_grace", "publish_occupancy",
                 "metrics_port", "close_time", "retention"):
        assert getattr(settings, name) == getattr(default, name), name
    with pytest.raises(SettingsError, match=r"ingest\.seq_gap_graces"):
        settings_from_dict({"ingest": {"seq_gap_graces": 1}})


def test_the_reference_documents_every_key() -> None:
    text = (ROOT / "docs" / "central-configuration.md").read_text(encoding="utf-8")
    documented: set[str] = set()
    for row in re.findall(r"^\| (`[^|]+`) \|", text, re.M):
        documented |= set(re.findall(r"`([a-z_.]+)`", row))
    assert documented == _keys(_example())
