"""nfcpy's real drivers against simulated cards: the UDP pseudo-device and a PN532 on a pty.

* ``udp``: :class:`firmware_sim.bridges.nfc_udp.UdpTagBridge` on 127.0.0.1 (a free port, bound
  with port 0 and read back) ↔ nfcpy ``nfc/clf/udp.py`` (device path ``udp:127.0.0.1:PORT``);
* ``pn532``: :class:`firmware_sim.bridges.pn532.Pn532Simulator` on a pseudo-terminal ↔ nfcpy
  ``nfc/clf/pn532.py`` + ``pn53x.py`` over its TTY transport (``tty:/dev/pts/N:pn532``).

Both run in a thread of the test process; the reader side is :class:`drivers.nfc.NfcReader` or
the ``edge-agent`` console script in a subprocess. A missing component (nfcpy, pyserial, the
console script, no pseudo-terminals) FAILS the fixture, never skips.

Use: ``from tests.hil.nfc_fixtures import ...`` the fixtures ``nfc_cards`` (session),
``nfc_bridge_factory`` (per test; ``make(transport, card=..., **options)`` starts a bridge and
stops it at the end) and the helper :func:`wait_until`.
"""

from __future__ import annotations

import importlib
import os
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.hil.issued import IssuedCards, issue

CARD_SEED = 14443
TRANSPORTS = ("udp", "pn532")


def wait_until(predicate: Callable[[], Any], timeout: float = 10.0, interval: float = 0.02,
               what: str = "condition") -> Any:
    """Poll ``predicate`` until it returns a true value (returned); fail after ``timeout``."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout:g} s waiting for {what}")
        time.sleep(interval)


def require_components() -> None:
    """Fail (never skip) when a component the NFC HIL tests need is missing."""
    for module in ("nfc", "nfc.clf.udp", "nfc.clf.pn532", "nfc.tag.tt4", "serial"):
        try:
            importlib.import_module(module)
        except ImportError as exc:
            pytest.fail(f"NFC HIL tests need {module} (nfcpy 1.0.4 / pyserial, installed by the "
                        f"project's setup): {exc}")
    try:
        master, slave = os.openpty()
    except OSError as exc:
        pytest.fail(f"NFC HIL tests need pseudo-terminals (/dev/ptmx): {exc}")
    os.close(master)
    os.close(slave)


def edge_agent_script() -> Path:
    script = Path(sys.executable).parent / "edge-agent"
    if not script.exists():
        pytest.fail(f"console script {script} missing: install the project (pip install -e .)")
    return script


@pytest.fixture(scope="session")
def nfc_cards(tmp_path_factory: pytest.TempPathFactory) -> IssuedCards:
    require_components()
    return issue(tmp_path_factory, "nfc-cards", 2, seed=CARD_SEED)


BridgeFactory = Callable[..., Any]


@pytest.fixture
def nfc_bridge_factory(nfc_cards: IssuedCards) -> Iterator[BridgeFactory]:
    """``make(transport, card=None, **options)`` → a started UdpTagBridge / Pn532Simulator."""
    from firmware_sim.bridges.nfc_udp import UdpTagBridge
    from firmware_sim.bridges.pn532 import Pn532Simulator

    started: list[Any] = []

    def make(transport: str, card: Path | None = None, **options: Any) -> Any:
        card_dir = card or nfc_cards.card(1)
        if transport == "udp":
            bridge: Any = UdpTagBridge(card_dir, **options)
        elif transport == "pn532":
            bridge = Pn532Simulator(card_dir, **options)
        else:
            raise ValueError(transport)
        started.append(bridge.start())
        return bridge

    yield make
    for bridge in started:
        bridge.stop()
