"""Issuing a batch of simulated cards (``firmware-sim issue``): PKI, trust folder, card folders."""

from __future__ import annotations

import random
import shutil
from datetime import date
from pathlib import Path

from . import pki
from .faults import Faults
from .people import REFERENCE_DATE, make_people
from .personalise import CardOptions, personalise, write_card
from .profiles import DEFAULT_PROFILE
from .timing import TimingModel


def load_or_make_pki(out: Path, ds_algorithm: str = "ecdsa") -> pki.TestPKI:
    """Reuse ``out/pki`` when present (one CSCA/DS per output folder), else create it."""
    folder = out / "pki"
    if (folder / "pki.json").exists():
        return pki.TestPKI.load(folder)
    test_pki = pki.make_pki(ds_algorithm)
    test_pki.save(folder)
    return test_pki


def issue_cards(
    out: Path,
    count: int,
    seed: int = 0,
    *,
    dg13_layout: str = "nested",
    aa: str = "ecdsa",
    faults: Faults | None = None,
    timing: TimingModel | None = None,
    ds_algorithm: str = "ecdsa",
    refuse_select_mf: bool = False,
    as_of: date = REFERENCE_DATE,
    profile: str = DEFAULT_PROFILE,
    dg13_values: str = "nested",
    partial_dob: float = 0.0,
) -> list[Path]:
    """Issue ``count`` cards under ``out/cards`` (numbered after existing ones); return their dirs.

    ``dg13_layout``: ``nested``, ``siblings`` or ``mixed`` (alternating, seeded). People are
    drawn as of ``as_of`` (fixed by default, for reproducibility). ``profile`` names what the
    chips refuse (:mod:`.profiles`; ``strict`` by default). Writes
    ``out/pki`` and ``out/trust`` (trusted CSCA and master list only). ``dg13_values``:
    ``nested`` (as real chips) or ``flat``; ``partial_dob``: the share of people whose birth day
    or month is unknown.
    """
    out = Path(out)
    test_pki = load_or_make_pki(out, ds_algorithm)
    trust = out / "trust"
    trust.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(out / "pki" / "csca.pem", trust / "csca.pem")
    shutil.copyfile(out / "pki" / "masterlist.ml", trust / "masterlist.ml")
    faults = faults or Faults()
    cards = out / "cards"
    cards.mkdir(exist_ok=True)
    start = 1 + max((int(p.name) for p in cards.iterdir() if p.name.isdigit()), default=0)
    rng = random.Random(seed)
    signer_name = faults.sod_signer
    signer = test_pki.signer(signer_name)
    written = []
    for i, person in enumerate(make_people(count, seed, as_of, partial_dob)):
        layout = dg13_layout if dg13_layout != "mixed" else rng.choice(["nested", "siblings"])
        options = CardOptions(layout, aa, refuse_select_mf, profile, dg13_values=dg13_values)
        card = personalise(person, signer, options, random.Random(f"{seed}:{i}"), signer_name)
        written.append(write_card(cards / f"{start + i:04d}", card, faults, timing))
    return written
