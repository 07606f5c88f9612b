"""firmware_sim.frames: synthetic card QR payloads, the corpus manifest, the command line."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from firmware_sim.frames import (
    CodeParams,
    FrameParams,
    main,
    qr_modules,
    render_frame,
    synthetic_payloads,
)


def test_payloads_are_card_shaped_utf8() -> None:
    payloads = synthetic_payloads(20, seed=1)
    assert payloads == synthetic_payloads(20, seed=1)
    for payload in payloads:
        fields = payload.decode("utf-8").split("|")
        assert len(fields) in (7, 11)
        assert len(fields[0]) == 12 and fields[0].isdigit()
        assert fields[4] in ("Nam", "Nữ")
    assert any(not p.isascii() for p in payloads)


def test_render_is_deterministic_and_sized() -> None:
    params = FrameParams(codes=(CodeParams(b"abc", angle_deg=30, perspective=0.05),),
                         blur_sigma=0.8, noise_sigma=5, contrast=0.5, seed=4)
    a, b = render_frame(params), render_frame(params)
    assert a.shape == (480, 640) and a.dtype.name == "uint8"
    assert (a == b).all()
    assert qr_modules(b"abc").shape == (29, 29)   # version 1 + 2 x 4 quiet zone


def test_cli_writes_corpus_and_manifest(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--out", str(tmp_path), "--count", "12", "--seed", "3"]) == 0
    summary = json.loads(capsys.readouterr().out)
    manifest = json.loads((tmp_path / "manifest.json").read_text(encoding="utf-8"))
    assert summary["frames"] == manifest["count"] == 12
    for entry in manifest["frames"]:
        assert (tmp_path / entry["file"]).is_file()
        assert [bytes.fromhex(h).decode() for h in entry["payloads_hex"]] == entry["texts"]
        assert len(entry["payloads_hex"]) == len(entry["params"]["codes"]) <= 2
