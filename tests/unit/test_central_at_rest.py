"""Personal data at rest in the collector."""

from __future__ import annotations

from pathlib import Path

import pytest

from central.at_rest import (
    AtRestError,
    decrypt_personal,
    encrypt_personal,
    load_data_key,
    new_data_key,
)


def test_round_trip_binding_and_key_file(tmp_path: Path) -> None:
    key = new_data_key(tmp_path / "data.key")
    assert (tmp_path / "data.key").stat().st_mode & 0o777 == 0o600
    assert load_data_key(tmp_path / "data.key") == key
    blob = encrypt_personal(key, "stay-1", {"full_name": "Nguyễn Thị Mai"})
    assert b"Nguy" not in blob
    assert decrypt_personal(key, "stay-1", blob) == {"full_name": "Nguyễn Thị Mai"}
    with pytest.raises(AtRestError):
        decrypt_personal(key, "stay-2", blob)
    with pytest.raises(AtRestError):
        decrypt_personal(bytes(32), "stay-1", blob)
    with pytest.raises(AtRestError):
        decrypt_personal(key, "stay-1", blob[:20])
