"""Simulated cards issued once per test session for the hardware-in-the-loop tests."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from firmware_sim.card import PROFILE_NAMES, issue_cards


@dataclass(frozen=True)
class IssuedCards:
    """Cards in ``out/cards/NNNN`` and the trust folder (the test CSCA and master list)."""

    out: Path
    trust: Path

    def card(self, number: int = 1) -> Path:
        return self.out / "cards" / f"{number:04d}"

    def info(self, number: int = 1) -> dict[str, Any]:
        data: dict[str, Any] = json.loads((self.card(number) / "card.json").read_text("utf-8"))
        return data

    def profile_number(self, profile: str) -> int:
        """The card issued with ``profile`` by :func:`issue_profiles`."""
        number = PROFILE_NAMES.index(profile) + 1
        assert self.info(number)["options"]["profile"] == profile
        return number


def issue(tmp_path_factory: pytest.TempPathFactory, name: str, count: int,
          seed: int) -> IssuedCards:
    out = tmp_path_factory.mktemp(name)
    issue_cards(out, count, seed=seed)
    return IssuedCards(out, out / "trust")


def issue_profiles(tmp_path_factory: pytest.TempPathFactory, name: str,
                   seed: int) -> IssuedCards:
    """One card per simulated-card profile (strict, strict-no-mf, bac-only, …), same person."""
    out = tmp_path_factory.mktemp(name)
    for profile in PROFILE_NAMES:
        issue_cards(out, 1, seed=seed, profile=profile)
    return IssuedCards(out, out / "trust")
