"""The centre's subject equals the device's (the person search depends on it)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from central.subjects import SubjectError
from central.subjects import subject_for as centre_subject
from edge_agent.events.subject import subject_for as device_subject


@given(st.from_regex(r"\A[0-9]{12}\Z"), st.binary(min_size=16, max_size=64))
def test_centre_and_device_compute_the_same_subject(id_number: str, key: bytes) -> None:
    assert centre_subject(id_number, key) == device_subject(id_number, key)


def test_refuses_short_keys_and_malformed_numbers() -> None:
    with pytest.raises(SubjectError, match="16 bytes"):
        centre_subject("046303000001", b"short")
    for bad in ("04630300000", "0463030000011", "04630300000a", "٠٤٦٣٠٣٠٠٠٠٠١"):
        with pytest.raises(SubjectError, match="12 digits"):
            centre_subject(bad, bytes(32))
