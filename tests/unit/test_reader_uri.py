"""Reader URIs: built-in schemes, and schemes registered by installed packages (``sim:``).

drivers/uri.py never imports the simulator; the ``sim`` scheme comes from the entry point that
pyproject.toml declares in the group ``cccd_checkin.card_readers``. The last tests put a
synthetic distribution on ``sys.path``, so the look-up itself is exercised through
:mod:`importlib.metadata` without the simulator.
"""

from __future__ import annotations

import sys
import tomllib
from importlib.metadata import entry_points
from pathlib import Path

import pytest

from drivers.card_reader import ReaderUnavailableError
from drivers.uri import READER_ENTRY_POINTS, UriError, open_reader
from firmware_sim.card import issue_cards
from firmware_sim.sim_reader import SimCardReader

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def card(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("uri-cards")
    issue_cards(out, 1, seed=5)
    return out / "cards" / "0001"


def test_pyproject_registers_the_sim_scheme_and_the_install_agrees() -> None:
    with (ROOT / "pyproject.toml").open("rb") as fh:
        declared = tomllib.load(fh)["project"]["entry-points"][READER_ENTRY_POINTS]
    assert declared == {"sim": "firmware_sim.sim_reader:open_uri"}
    installed = {ep.name: ep.value for ep in entry_points(group=READER_ENTRY_POINTS)}
    assert installed.get("sim") == declared["sim"], (
        "the installed metadata lacks the entry point: reinstall with `pip install -e .`")


def test_sim_uri_opens_the_simulated_reader(card: Path) -> None:
    with open_reader(f"sim:{card}") as reader:
        assert isinstance(reader, SimCardReader)
        assert reader.name == f"sim:{card}"
        presence = reader.connect(timeout=1)
        assert presence.atr
        # SELECT the eMRTD application: the simulated chip answers 90 00.
        response = reader.transmit(bytes.fromhex("00A4040C07A0000002471001"))
        assert response[-2:] == b"\x90\x00"


def test_sim_uri_without_a_directory_is_refused() -> None:
    with pytest.raises(UriError, match=r"sim: needs a card directory"):
        open_reader("sim:")


def test_sim_uri_with_a_missing_card_is_unavailable(tmp_path: Path) -> None:
    with pytest.raises(ReaderUnavailableError, match=r"cannot load simulated card .*missing"):
        open_reader(f"sim:{tmp_path / 'missing'}")


@pytest.mark.parametrize("uri", ["bogus:x", "bogus", ":x", "SIM:/tmp/x"])
def test_unknown_scheme_is_refused_naming_it(uri: str) -> None:
    scheme = uri.partition(":")[0]
    with pytest.raises(UriError) as caught:
        open_reader(uri)
    message = str(caught.value)
    assert f"reader scheme {scheme!r}" in message
    assert READER_ENTRY_POINTS in message and "sim" in message and "pcsc" in message


# --- the look-up through importlib.metadata, with a synthetic distribution ----------------------

_PLUGIN = '''
from drivers.card_reader import CardPresence, CardReader


class EchoReader(CardReader):
    name = "echo"

    def __init__(self, rest: str) -> None:
        self.rest = rest

    def connect(self, timeout=None):
        return CardPresence(atr=b"\\x3b\\x00", reader_name=self.name)

    def transmit(self, apdu: bytes) -> bytes:
        return apdu + b"\\x90\\x00"

    def disconnect(self) -> None:
        pass


def open_echo(rest: str) -> EchoReader:
    return EchoReader(rest)


def not_a_reader(rest: str) -> str:
    return rest
'''


def _distribution(where: Path, name: str, entries: dict[str, str]) -> None:
    info = where / f"{name}-1.0.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: 1.0\n",
                                   encoding="utf-8")
    lines = "".join(f"{key} = {value}\n" for key, value in entries.items())
    (info / "entry_points.txt").write_text(f"[{READER_ENTRY_POINTS}]\n{lines}",
                                           encoding="utf-8")


@pytest.fixture
def plugins(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    (tmp_path / "echo_readers.py").write_text(_PLUGIN, encoding="utf-8")
    _distribution(tmp_path, "echo_readers", {
        "echo": "echo_readers:open_echo",
        "broken": "echo_readers:no_such_factory",
        "missing": "no_such_module_anywhere:open",
        "wrong": "echo_readers:not_a_reader",
        "nfc": "echo_readers:open_echo",
    })
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delitem(sys.modules, "echo_readers", raising=False)
    return tmp_path


def test_a_registered_scheme_is_opened_with_the_rest_of_the_uri(plugins: Path) -> None:
    reader = open_reader("echo:a:b?c=1")
    assert type(reader).__name__ == "EchoReader"
    assert getattr(reader, "rest", None) == "a:b?c=1"
    assert reader.transmit(b"\x00\xb0") == b"\x00\xb0\x90\x00"


def test_a_registered_scheme_is_listed_when_another_is_unknown(plugins: Path) -> None:
    with pytest.raises(UriError, match=r"known schemes: pcsc, nfc, broken, echo, missing, sim, wrong\)"):
        open_reader("nothing:x")


@pytest.mark.parametrize(("uri", "reason"), [
    ("broken:x", r"reader scheme 'broken': cannot load echo_readers:no_such_factory"),
    ("missing:x", r"reader scheme 'missing': cannot load no_such_module_anywhere:open"),
    ("wrong:x", r"reader scheme 'wrong': echo_readers:not_a_reader returned str, not a "
                r"CardReader"),
])
def test_a_broken_registration_makes_the_reader_unavailable(plugins: Path, uri: str,
                                                            reason: str) -> None:
    with pytest.raises(ReaderUnavailableError, match=reason):
        open_reader(uri)


def test_two_packages_registering_one_scheme_are_refused(plugins: Path) -> None:
    _distribution(plugins / "second", "other_echo_readers", {"echo": "echo_readers:open_echo"})
    sys.path.insert(0, str(plugins / "second"))
    try:
        with pytest.raises(UriError, match=r"reader scheme 'echo' is provided more than once"):
            open_reader("echo:x")
    finally:
        sys.path.remove(str(plugins / "second"))


def test_a_registration_cannot_replace_a_built_in_scheme(plugins: Path) -> None:
    # ``nfc`` is registered by the synthetic package too; the built-in driver still answers.
    with pytest.raises(UriError, match=r"nfc: needs a device path"):
        open_reader("nfc:")
