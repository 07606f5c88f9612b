"""Every code a desk scanner meets, rendered as camera frames and decoded by the real zbar
(binary mode) and zxing-cpp, then recognised by shape (docs/cccd.md §5): the card QR with a
partial date of birth, the VNeID identity token and the BHYT card QR."""

from __future__ import annotations

from datetime import date

import pytest

from drivers.scanners.decoders import make_decoder
from edge_agent.cccd import BirthDate, Sex, code_format, read_code
from edge_agent.cccd.bhyt import format_bhyt
from edge_agent.cccd.qr import format_card_qr
from firmware_sim.frames import CodeParams, FrameParams, render_frame

CODES = {
    "cccd": format_card_qr("046055012345", "Lê Văn An", BirthDate(1955), Sex.MALE,
                           "Thôn 1, Thừa Thiên Huế", date(2021, 8, 20)).encode(),
    "vneid-token": b"f47ac10b-58cc-4372-a567-0e02b2c3d479",
    "bhyt": format_bhyt("HT3467930012345", "Lê Văn An", BirthDate(1955), Sex.MALE,
                        "Thôn 1, Thừa Thiên Huế", "46 - 001", date(2025, 1, 1),
                        date(2025, 12, 31), date(2024, 12, 1)).encode(),
}


@pytest.mark.parametrize("decoder", ["zxing", "zbar"])
@pytest.mark.parametrize("fmt", sorted(CODES))
def test_decoded_and_recognised(decoder: str, fmt: str) -> None:
    payload = CODES[fmt]
    frame = render_frame(FrameParams(codes=(CodeParams(payload, module_px=4, angle_deg=8.0),),
                                     noise_sigma=4, seed=1))
    decoded = [d.payload for d in make_decoder(decoder).decode(frame)]
    assert decoded == [payload]
    assert code_format(read_code(decoded[0])) == fmt
