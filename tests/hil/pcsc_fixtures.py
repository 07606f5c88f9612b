"""pcscd + vpcd in a private network namespace, and simulated cards presented through it.

The real PC/SC stack is exercised: pyscard in the test process → libpcsclite → pcscd's client
socket ``/run/pcscd/pcscd.comm`` (a fixed path, shared through the file system) → pcscd → the
``libifdvpcd.so`` IFD handler → TCP → :mod:`firmware_sim.bridges.vpcd` → the simulated chip.

vpcd listens on every interface, so pcscd runs in a network namespace that holds only loopback
(``ip netns add``; ``ip netns exec NS pcscd -f -c CONFDIR`` with a private ``reader.conf.d``
folder naming only vpcd); the bridge runs in the same namespace as a subprocess, driven through
a line protocol on its stdin (see the bridge's docstring). Any other pcscd is stopped first, as
only one daemon can own the client socket; a file lock serialises concurrent test sessions.

A missing component (``ip``, ``pcscd``, the vpcd driver, no right to create a namespace) makes
the fixture FAIL, never skip: the project's setup installs all of them (``deploy/apt``).

Use: ``from tests.hil.pcsc_fixtures import *  # noqa: F403`` in a test module, then the
fixtures ``pcsc_stack`` (session), ``pcsc_cards`` (session), ``vpcd_bridge`` (per test, card
0001 inserted) and the helper ``wait_until``.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import queue
import shutil
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.hil.issued import IssuedCards, issue

ROOT = Path(__file__).resolve().parents[2]
VPCD_DRIVER = Path("/usr/lib/pcsc/drivers/serial/libifdvpcd.so")
VPCD_PORT = 0x8C7B
PCSCD_SOCKET = Path("/run/pcscd/pcscd.comm")
PCSCD_PID = Path("/run/pcscd/pcscd.pid")
LOCK_FILE = Path("/run/lock/cccd-hil-pcscd.lock")
READER_PREFIX = "HIL vpcd"
"""FRIENDLYNAME of the vpcd entry; pcscd names the readers ``HIL vpcd 00 00`` and ``00 01``."""
READER_NAME = f"{READER_PREFIX} 00 00"
"""The reader behind vpcd port 0x8C7B, where :func:`vpcd_bridge` presents its card."""
CARD_SEED = 9303


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


def _require(condition: bool, message: str) -> None:
    if not condition:
        pytest.fail(f"PC/SC HIL component missing: {message} "
                    "(install deploy/apt/*.txt: pcscd, vsmartcard-vpcd, iproute2)", pytrace=False)


def _run(*cmd: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=30, check=False)
    if check and proc.returncode != 0:
        pytest.fail(f"{' '.join(cmd)} failed ({proc.returncode}): {proc.stderr.strip()}",
                    pytrace=False)
    return proc


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A zombie is not alive for our purposes.
    with contextlib.suppress(OSError):
        stat = Path(f"/proc/{pid}/stat").read_text()
        return stat.rsplit(")", 1)[1].split()[0] != "Z"
    return True


def _stop_other_pcscd() -> None:
    """Stop a system pcscd (systemd units) or a stray one named by its pid file."""
    if Path("/run/systemd/system").is_dir() and shutil.which("systemctl"):
        _run("systemctl", "stop", "pcscd.socket", "pcscd.service", check=False)
    with contextlib.suppress(OSError, ValueError):
        pid = int(PCSCD_PID.read_bytes().split(b"\0")[0].strip())
        comm = Path(f"/proc/{pid}/comm").read_text().strip()
        if comm == "pcscd" and _pid_alive(pid):
            os.kill(pid, signal.SIGTERM)
            deadline = time.monotonic() + 5
            while _pid_alive(pid) and time.monotonic() < deadline:
                time.sleep(0.02)
            if _pid_alive(pid):
                os.kill(pid, signal.SIGKILL)
    for stale in (PCSCD_SOCKET, PCSCD_PID):
        with contextlib.suppress(FileNotFoundError):
            stale.unlink()


def pcsc_service_ready(reader: str | None = None) -> bool:
    """True when pcscd answers on its socket (and lists ``reader`` when given)."""
    from smartcard import scard

    hresult, ctx = scard.SCardEstablishContext(scard.SCARD_SCOPE_USER)
    if hresult != scard.SCARD_S_SUCCESS:
        return False
    try:
        hresult, readers = scard.SCardListReaders(ctx, [])
        return hresult == scard.SCARD_S_SUCCESS and (reader is None or reader in readers)
    finally:
        scard.SCardReleaseContext(ctx)


def card_present(reader: str = READER_NAME) -> bool | None:
    """pcscd's view of ``reader``: card present (True), empty (False), no reader / no pcscd."""
    from smartcard import scard

    hresult, ctx = scard.SCardEstablishContext(scard.SCARD_SCOPE_USER)
    if hresult != scard.SCARD_S_SUCCESS:
        return None
    try:
        hresult, states = scard.SCardGetStatusChange(ctx, 0, [(reader, scard.SCARD_STATE_UNAWARE)])
        if hresult != scard.SCARD_S_SUCCESS:
            return None
        return bool(states[0][1] & scard.SCARD_STATE_PRESENT)
    finally:
        scard.SCardReleaseContext(ctx)


def wait_card(present: bool, reader: str = READER_NAME, timeout: float = 10) -> None:
    """Wait until pcscd reports the card in ``reader`` present (or absent)."""
    wait_until(lambda: card_present(reader) is present, timeout,
               what=f"pcscd to see the card {'present' if present else 'absent'} in {reader}")


class PcscStack:
    """One network namespace with pcscd (vpcd configured) and the bridges started in it."""

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.netns = f"cccd-hil-{os.getpid()}-{uuid.uuid4().hex[:6]}"
        self.confdir = workdir / "reader.conf.d"
        self.log_path = workdir / "pcscd.log"
        self.pcscd: subprocess.Popen[bytes] | None = None
        self.bridges: list[Bridge] = []
        self.starts = 0

    # -- namespace ------------------------------------------------------------------------------

    def setup(self) -> None:
        _require(shutil.which("ip") is not None, "the `ip` command (iproute2)")
        _require(shutil.which("pcscd") is not None, "the pcscd daemon (package pcscd)")
        _require(VPCD_DRIVER.exists(), f"the vpcd driver {VPCD_DRIVER} (vsmartcard-vpcd)")
        self.confdir.mkdir(parents=True, exist_ok=True)
        (self.confdir / "vpcd").write_text(
            f'FRIENDLYNAME "{READER_PREFIX}"\n'
            f"DEVICENAME /dev/null:0x{VPCD_PORT:04X}\n"
            f"LIBPATH {VPCD_DRIVER}\n", encoding="ascii")
        _run("ip", "netns", "add", self.netns)
        _run("ip", "netns", "exec", self.netns, "ip", "link", "set", "lo", "up")
        _stop_other_pcscd()
        self.start_pcscd()

    def teardown(self) -> None:
        for bridge in list(self.bridges):
            bridge.stop()
        self.stop_pcscd()
        _run("ip", "netns", "delete", self.netns, check=False)

    def in_netns(self, *cmd: str) -> list[str]:
        """The command line that runs ``cmd`` inside the namespace."""
        return ["ip", "netns", "exec", self.netns, *cmd]

    # -- pcscd -----------------------------------------------------------------------------------

    def start_pcscd(self, timeout: float = 10.0) -> None:
        """Start pcscd in the namespace and wait until it answers and lists the vpcd reader."""
        if self.pcscd is not None and self.pcscd.poll() is None:
            raise RuntimeError("pcscd already running")
        for stale in (PCSCD_SOCKET, PCSCD_PID):
            with contextlib.suppress(FileNotFoundError):
                stale.unlink()
        log = self.log_path.open("ab")
        self.pcscd = subprocess.Popen(
            self.in_netns("pcscd", "--foreground", "--config", str(self.confdir)),
            stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        log.close()
        self.starts += 1
        deadline = time.monotonic() + timeout
        while not pcsc_service_ready(READER_NAME):
            if self.pcscd.poll() is not None:
                pytest.fail(f"pcscd exited with {self.pcscd.returncode}:\n{self.log_tail()}",
                            pytrace=False)
            if time.monotonic() > deadline:
                pytest.fail(f"pcscd did not list {READER_NAME!r} within {timeout:g} s:\n"
                            f"{self.log_tail()}", pytrace=False)
            time.sleep(0.02)

    def stop_pcscd(self) -> None:
        """Kill pcscd (SIGTERM, then SIGKILL) and wait until its socket is gone."""
        proc, self.pcscd = self.pcscd, None
        if proc is None:
            return
        if proc.poll() is None:
            proc.terminate()  # `ip netns exec` execs pcscd: this is pcscd's own pid
            try:
                proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=5)
        with contextlib.suppress(FileNotFoundError):
            PCSCD_SOCKET.unlink()

    def restart_pcscd(self) -> None:
        """The reader unplugged and plugged back: pcscd stopped and started again."""
        self.stop_pcscd()
        self.start_pcscd()

    def log_tail(self, lines: int = 30) -> str:
        with contextlib.suppress(OSError):
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        return ""

    # -- bridges ---------------------------------------------------------------------------------

    def bridge(self, card_dir: Path, *args: str, port: int = VPCD_PORT) -> Bridge:
        """Start the vpcd bridge for ``card_dir`` in the namespace (card inserted by default)."""
        cmd = self.in_netns(sys.executable, "-m", "firmware_sim.bridges.vpcd", "--card",
                            str(card_dir), "--port", str(port), *args)
        bridge = Bridge(cmd, self)
        self.bridges.append(bridge)
        return bridge


class Bridge:
    """A running ``firmware_sim.bridges.vpcd`` subprocess and its stdin control channel."""

    def __init__(self, cmd: list[str], stack: PcscStack) -> None:
        self.stack = stack
        env = dict(os.environ, PYTHONPATH=str(ROOT), PYTHONUNBUFFERED="1")
        self.proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE, text=True, cwd=ROOT, env=env)
        self._lines: queue.Queue[str | None] = queue.Queue()
        self._stderr: list[str] = []
        threading.Thread(target=self._pump, daemon=True).start()
        threading.Thread(target=self._pump_stderr, daemon=True).start()
        self.ready = self._reply(timeout=20)

    def _pump(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self._lines.put(line.rstrip("\n"))
        self._lines.put(None)

    def _pump_stderr(self) -> None:
        assert self.proc.stderr is not None
        for line in self.proc.stderr:
            self._stderr.append(line.rstrip("\n"))

    def _reply(self, timeout: float = 10) -> dict[str, Any]:
        try:
            line = self._lines.get(timeout=timeout)
        except queue.Empty:
            pytest.fail(f"vpcd bridge did not answer within {timeout} s", pytrace=False)
        if line is None:
            pytest.fail("vpcd bridge exited:\n" + "\n".join(self._stderr[-20:]), pytrace=False)
        status, _, body = line.partition(" ")
        if status != "ok":
            pytest.fail(f"vpcd bridge: {line}", pytrace=False)
        reply: dict[str, Any] = json.loads(body)
        return reply

    def command(self, line: str) -> dict[str, Any]:
        """Send one control command, return the bridge's status reply."""
        assert self.proc.stdin is not None
        self.proc.stdin.write(line + "\n")
        self.proc.stdin.flush()
        return self._reply()

    def insert(self) -> None:
        self.command("insert")

    def remove(self) -> None:
        self.command("remove")

    def remove_after(self, apdus: int) -> None:
        """Answer ``apdus`` more APDUs, then take the card away on the next one (unanswered)."""
        self.command(f"remove-after {apdus}")

    def status(self) -> dict[str, Any]:
        return self.command("status")

    def wait_ready(self, timeout: float = 10) -> dict[str, Any]:
        """Wait until vpcd accepted the bridge's connection and polled the card."""
        result: dict[str, Any] = wait_until(lambda: (s := self.status())["ready"] and s,
                                            timeout, what="vpcd polling the bridge's card")
        return result

    def wait_connected(self, connected: bool = True, timeout: float = 10) -> dict[str, Any]:
        """Wait until the bridge's TCP connection to vpcd is up (or down)."""
        result: dict[str, Any] = wait_until(
            lambda: (s := self.status())["connected"] == connected and s,
            timeout, what=f"bridge connected={connected}")
        return result

    def stop(self) -> None:
        if self in self.stack.bridges:
            self.stack.bridges.remove(self)
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=5)
        for stream in (self.proc.stdin, self.proc.stdout, self.proc.stderr):
            if stream is not None:
                with contextlib.suppress(OSError):
                    stream.close()


@pytest.fixture(scope="session")
def pcsc_cards(tmp_path_factory: pytest.TempPathFactory) -> IssuedCards:
    """Two simulated cards and their trust folder."""
    return issue(tmp_path_factory, "pcsc-cards", 2, seed=CARD_SEED)


_SHARED: dict[str, Any] = {"stack": None, "users": 0, "lock": None}


@contextlib.contextmanager
def shared_stack(workdir: Path) -> Iterator[PcscStack]:
    """The process's one :class:`PcscStack`, started by its first user, torn down by the last.

    Several test modules importing these fixtures each get their own session fixture; they
    share one daemon here. A file lock keeps other processes' sessions out meanwhile.
    """
    if _SHARED["users"] == 0:
        _require(hasattr(os, "geteuid") and os.geteuid() == 0,
                 "root (network namespaces and pcscd's /run/pcscd need it)")
        LOCK_FILE.parent.mkdir(parents=True, exist_ok=True)
        lock = LOCK_FILE.open("w")
        fcntl.flock(lock, fcntl.LOCK_EX)  # one PC/SC HIL session at a time on this machine
        stack = PcscStack(workdir)
        try:
            stack.setup()
        except BaseException:
            stack.teardown()
            lock.close()
            raise
        _SHARED.update(stack=stack, lock=lock)
    _SHARED["users"] += 1
    try:
        yield _SHARED["stack"]
    finally:
        _SHARED["users"] -= 1
        if _SHARED["users"] == 0:
            try:
                _SHARED["stack"].teardown()
            finally:
                _SHARED["lock"].close()
                _SHARED.update(stack=None, lock=None)


@pytest.fixture(scope="session")
def pcsc_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PcscStack]:
    """pcscd with vpcd in a private network namespace, for the whole session."""
    with shared_stack(tmp_path_factory.mktemp("pcscd")) as stack:
        yield stack


@pytest.fixture
def vpcd_bridge(pcsc_stack: PcscStack, pcsc_cards: IssuedCards) -> Iterator[Bridge]:
    """Card 0001 presented in ``HIL vpcd 00 00`` (a fresh bridge per test; pcscd restarted
    first if an earlier test left it stopped)."""
    if pcsc_stack.pcscd is None or pcsc_stack.pcscd.poll() is not None:
        pcsc_stack.stop_pcscd()
        pcsc_stack.start_pcscd()
    wait_card(False)  # no card left over from an earlier test
    bridge = pcsc_stack.bridge(pcsc_cards.card(1))
    bridge.wait_ready()
    wait_card(True)
    yield bridge
    bridge.stop()
    wait_card(False)


__all__ = [
    "READER_NAME", "READER_PREFIX", "Bridge", "IssuedCards", "PcscStack", "card_present",
    "pcsc_cards", "pcsc_service_ready", "pcsc_stack", "shared_stack", "vpcd_bridge", "wait_card",
    "wait_until",
]
