"""Secrets at rest: the agent's and the collector's writers create keys, secrets, databases
and outboxes 0600 (folders 0700) whatever the process umask (docs/privacy.md, threat model)."""

from __future__ import annotations

import io
import os
import sqlite3
import stat
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from central.private_files import (
    ensure_private_file,
    extract_private_zip,
    private_dir,
    write_private,
)
from edge_agent.private_files import replace_private_file


@pytest.fixture(autouse=True)
def lax_umask() -> Iterator[None]:
    """The usual 022: anything not created private on purpose would be world-readable."""
    old = os.umask(0o022)
    try:
        yield
    finally:
        os.umask(old)


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def sqlite_family(path: Path) -> list[Path]:
    return [p for p in (path, Path(f"{path}-wal"), Path(f"{path}-shm")) if p.exists()]


def test_write_private_creates_and_narrows(tmp_path: Path) -> None:
    write_private(tmp_path / "secret", b"x")
    assert mode(tmp_path / "secret") == 0o600
    old = tmp_path / "old"
    old.write_bytes(b"before")
    old.chmod(0o644)
    write_private(old, b"after")
    assert mode(old) == 0o600 and old.read_bytes() == b"after"
    ensure_private_file(tmp_path / "db")
    assert mode(tmp_path / "db") == 0o600 and (tmp_path / "db").read_bytes() == b""


def test_private_dir_makes_every_missing_parent_0700(tmp_path: Path) -> None:
    private_dir(tmp_path / "a" / "b" / "c")
    for folder in ("a", "a/b", "a/b/c"):
        assert mode(tmp_path / folder) == 0o700, folder


def test_collector_sqlite_database_and_wal_are_private(tmp_path: Path) -> None:
    from sqlalchemy import text

    from central.db.engine import make_engine

    engine = make_engine(f"sqlite:///{tmp_path / 'central.sqlite3'}")
    with engine.begin() as conn:
        conn.execute(text("CREATE TABLE t (x INTEGER)"))
        conn.execute(text("INSERT INTO t VALUES (1)"))
    family = sqlite_family(tmp_path / "central.sqlite3")
    assert len(family) == 3, family  # WAL mode: -wal and -shm exist while the engine is open
    assert {p.name: mode(p) for p in family} == {p.name: 0o600 for p in family}
    engine.dispose()


def test_collector_keys(tmp_path: Path) -> None:
    from central.at_rest import new_data_key
    from central.enrol import DeviceCA

    DeviceCA.create().save(tmp_path / "ca.crt", tmp_path / "ca.key")
    new_data_key(tmp_path / "data.key")
    assert mode(tmp_path / "ca.key") == 0o600
    assert mode(tmp_path / "data.key") == 0o600


def _bundle(members: dict[str, bytes], file_mode: int = 0o644) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for name, data in members.items():
            info = zipfile.ZipInfo(name)
            info.external_attr = file_mode << 16
            zf.writestr(info, data)
    return buf.getvalue()


def test_enrolment_bundle_extracts_private(tmp_path: Path) -> None:
    """``zipfile.extractall`` would give 0644 (umask 022); the bundle's keys stay 0600."""
    data = _bundle({"gate-1/keys/device-ed25519.pem": b"k", "gate-1/tls/gate-1.key": b"t",
                    "gate-1/tls/ca.pem": b"c"})
    written = extract_private_zip(data, tmp_path / "devices")
    assert len(written) == 3
    for folder, dirs, files in os.walk(tmp_path / "devices"):
        for name in dirs:
            assert mode(Path(folder) / name) == 0o700, name
        for name in files:
            assert mode(Path(folder) / name) == 0o600, name
    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        zf.extractall(tmp_path / "plain")
    assert mode(tmp_path / "plain" / "gate-1" / "tls" / "gate-1.key") == 0o644  # the old way


@pytest.mark.parametrize("name", ["../evil", "/etc/evil", "a/../../evil", "a\\..\\evil"])
def test_bundle_with_escaping_paths_is_refused(tmp_path: Path, name: str) -> None:
    with pytest.raises(ValueError, match="not a relative path"):
        extract_private_zip(_bundle({name: b"x"}), tmp_path / "devices")
    assert not (tmp_path / "evil").exists()


def test_agent_outbox_and_stay_register_are_private(tmp_path: Path) -> None:
    from edge_agent.outbox import Outbox
    from edge_agent.stay_register import StayRegister

    with Outbox(tmp_path / "outbox.sqlite3") as outbox:
        conn = sqlite3.connect(outbox.path)  # a second reader, as the drain thread would be
        conn.execute("SELECT count(*) FROM sqlite_master").fetchall()
        family = sqlite_family(tmp_path / "outbox.sqlite3")
        assert {p.name: mode(p) for p in family} == {p.name: 0o600 for p in family}
        assert len(family) >= 2, family
        conn.close()
    register = StayRegister(tmp_path / "stays.sqlite3")
    try:
        family = sqlite_family(tmp_path / "stays.sqlite3")
        assert {p.name: mode(p) for p in family} == {p.name: 0o600 for p in family}
    finally:
        register.close()


def test_agent_outbox_narrows_an_old_world_readable_file(tmp_path: Path) -> None:
    from edge_agent.outbox import Outbox

    path = tmp_path / "outbox.sqlite3"
    with Outbox(path):
        pass
    path.chmod(0o644)
    with Outbox(path):
        assert mode(path) == 0o600


def test_simulator_pki_and_card_keys_are_private(tmp_path: Path) -> None:
    from firmware_sim.card import issue_cards

    issue_cards(tmp_path / "cards", 1, seed=1)
    keys = [p for p in (tmp_path / "cards").rglob("*.key.pem")]
    assert keys and all(mode(p) == 0o600 for p in keys), [(p.name, oct(mode(p))) for p in keys]


def test_agent_runtime_configuration_file_is_replaced_whole_and_private(tmp_path: Path) -> None:
    path = tmp_path / "outbox.sqlite3.runtime.json"
    replace_private_file(path, b'{"revision":1}')
    path.with_name(path.name + ".tmp").write_bytes(b"left by a power cut")
    replace_private_file(path, b'{"revision":2}')
    assert path.read_bytes() == b'{"revision":2}'
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert sorted(p.name for p in tmp_path.iterdir()) == [path.name]
