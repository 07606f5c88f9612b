"""``central.wsgi:create()``: the gunicorn entry takes ``central web``'s options from
``CENTRAL_WEB_ARGS`` and refuses, with ``central web``'s one-line reasons, what it cannot use."""

from __future__ import annotations

from pathlib import Path

import pytest

from central.cli import CentralCliError
from central.wsgi import create


def _settings(tmp_path: Path) -> Path:
    path = tmp_path / "central.toml"
    path.write_text(f'database_url = "sqlite:///{tmp_path / "c.sqlite3"}"\n', encoding="utf-8")
    return path


def test_builds_the_app_from_the_files_named(tmp_path: Path) -> None:
    secret = tmp_path / "secret"
    secret.write_bytes(b"s" * 32)
    app = create({"CENTRAL_WEB_ARGS": f"--config '{_settings(tmp_path)}' "
                                      f"--secret-key-file '{secret}'"})
    assert app.config["SECRET_KEY"] == b"s" * 32
    assert app.config["SESSION_COOKIE_SECURE"] is True
    assert "DEVICE_CA_CERT" not in app.config


@pytest.mark.parametrize(("args", "reason"), [
    ("", "CENTRAL_WEB_ARGS is empty"),
    ("--config {cfg}", "no session secret"),
    ("--config {cfg} --port 8000", "--host/--port belong to the WSGI server"),
    ("--config {cfg} --secret-key-file {cfg} --bogus", "not valid `central web` options"),
    ("--config {tmp}/missing.toml --secret-key-file {cfg}", "missing.toml"),
])
def test_refuses_what_it_cannot_use(tmp_path: Path, args: str, reason: str) -> None:
    cfg = _settings(tmp_path)
    with pytest.raises(CentralCliError, match=reason):
        create({"CENTRAL_WEB_ARGS": args.format(cfg=cfg, tmp=tmp_path)})
