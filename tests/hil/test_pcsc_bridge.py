"""The vpcd bridge against a stand-in for vpcd's server socket (vsmartcard vpcd protocol).

No pcscd here: the test plays vpcd (listening socket, 2-byte big-endian length + payload,
1-byte controls 00 off / 01 on / 02 reset / 04 ATR) so framing, card insertion and removal, the
"remove after N APDUs" switch and tag-loss re-presentation are checked byte by byte.
"""

from __future__ import annotations

import socket
import struct
from collections.abc import Iterator
from pathlib import Path

import pytest

from firmware_sim.bridges.vpcd import CTRL_ATR, CTRL_ON, CTRL_RESET, VpcdCard
from firmware_sim.card import ATR, Faults, issue_cards

GET_CHALLENGE = bytes.fromhex("0084000008")
SELECT_EMRTD = bytes.fromhex("00A4040C07A0000002471001")


class FakeVpcd:
    """vpcd's side of the protocol: accept the virtual card, send messages, read answers."""

    def __init__(self) -> None:
        self.server = socket.create_server(("127.0.0.1", 0))
        self.server.settimeout(5)
        self.port = self.server.getsockname()[1]
        self.client: socket.socket | None = None

    def accept(self) -> None:
        self.client, _ = self.server.accept()
        self.client.settimeout(5)

    def send(self, payload: bytes) -> None:
        assert self.client is not None
        self.client.sendall(struct.pack(">H", len(payload)) + payload)

    def recv(self) -> bytes | None:
        assert self.client is not None
        header = self._exact(2)
        if header is None:
            return None
        return self._exact(struct.unpack(">H", header)[0])

    def _exact(self, size: int) -> bytes | None:
        assert self.client is not None
        data = b""
        while len(data) < size:
            try:
                chunk = self.client.recv(size - len(data))
            except ConnectionResetError:
                return None
            if not chunk:
                return None
            data += chunk
        return data

    def exchange(self, payload: bytes) -> bytes | None:
        self.send(payload)
        return self.recv()

    def close(self) -> None:
        if self.client is not None:
            self.client.close()
        self.server.close()


@pytest.fixture(scope="module")
def card_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("bridge-cards")
    issue_cards(out, 1, seed=7)
    return out / "cards" / "0001"


@pytest.fixture
def vpcd() -> Iterator[FakeVpcd]:
    fake = FakeVpcd()
    yield fake
    fake.close()


def test_protocol_and_removal(card_dir: Path, vpcd: FakeVpcd) -> None:
    with VpcdCard(card_dir, port=vpcd.port).start() as card:
        vpcd.accept()
        assert vpcd.client is not None
        assert vpcd.exchange(bytes([CTRL_ATR])) == ATR
        assert card.wait_ready(5)
        vpcd.send(bytes([CTRL_ON]))
        vpcd.send(bytes([CTRL_RESET]))
        assert vpcd.exchange(GET_CHALLENGE) == b"\x69\x85"  # strict: select the application
        assert vpcd.exchange(SELECT_EMRTD) == b"\x90\x00"
        answer = vpcd.exchange(GET_CHALLENGE)
        assert answer is not None and len(answer) == 10 and answer[-2:] == b"\x90\x00"
        card.remove_after(1)
        assert vpcd.exchange(GET_CHALLENGE) is not None
        assert vpcd.exchange(GET_CHALLENGE) is None  # removed, unanswered
        assert card.wait_connected(5, connected=False)
        assert not card.inserted and card.apdu_count == 4
        card.insert()
        vpcd.accept()
        assert vpcd.exchange(bytes([CTRL_ATR])) == ATR
        assert card.status()["connections"] == 2


def test_tag_loss_re_presents_the_card(card_dir: Path, vpcd: FakeVpcd) -> None:
    card = VpcdCard(card_dir, port=vpcd.port, faults=Faults(tag_loss_after_bytes=15),
                    reinsert_delay_s=0.05)
    with card.start():
        vpcd.accept()
        assert vpcd.exchange(SELECT_EMRTD) == b"\x90\x00"  # 2 bytes
        assert vpcd.exchange(GET_CHALLENGE) is not None  # 12 bytes
        assert vpcd.exchange(GET_CHALLENGE) is None  # 22 > 15: the tag is lost
        vpcd.accept()  # presented again after the delay
        vpcd.send(bytes([CTRL_ON]))
        assert vpcd.exchange(GET_CHALLENGE) is not None
        assert card.tag_losses == 1
