"""The police portal's address columns (central/web/exports.py split_address): a best-effort
split that never loses a part of the address and never fails."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from central.web.exports import split_address


def test_known_shapes() -> None:
    parts = split_address("12 Lê Lợi, Phường Bến Nghé, Quận 1, TP Hồ Chí Minh")
    assert (parts.province, parts.commune, parts.detail) == (
        "TP Hồ Chí Minh", "Phường Bến Nghé", "12 Lê Lợi, Quận 1")
    parts = split_address("Thôn 3, Xã Phú Thượng, Thừa Thiên Huế")
    assert (parts.province, parts.commune, parts.detail) == (
        "Thừa Thiên Huế", "Xã Phú Thượng", "Thôn 3")
    parts = split_address("Ngõ 12 Phố Huế, Hà Nội")
    assert (parts.province, parts.commune, parts.detail) == ("Hà Nội", "", "Ngõ 12 Phố Huế")
    parts = split_address("Số 5, Khu 2, Đà Nẵng")  # no commune prefix: the part before
    assert (parts.province, parts.commune, parts.detail) == ("Đà Nẵng", "Khu 2", "Số 5")
    assert split_address(None) == split_address("") == split_address(" , ,")
    assert split_address("Hà Nội").detail == "Hà Nội"


@given(st.lists(st.text(alphabet=st.characters(blacklist_characters=","), max_size=12),
                max_size=6))
def test_no_part_is_lost(parts: list[str]) -> None:
    address = ",".join(parts)
    split = split_address(address)
    kept = [p.strip() for p in parts if p.strip()]
    out = [split.province, split.commune, *split.detail.split(", ")]
    assert sorted(p for p in out if p) == sorted(kept)
    if len(kept) == 1:
        assert split.detail == kept[0]
