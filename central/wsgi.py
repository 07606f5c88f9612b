"""The web application for a production WSGI server (gunicorn), built like ``central web``.

``gunicorn 'central.wsgi:create()'`` calls :func:`create` in each worker. The options are
those of ``central web`` (``--config``, ``--secret-key-file``, ``--device-ca-cert``,
``--device-ca-key``, ``--insecure-cookies``), read from the environment variable
``CENTRAL_WEB_ARGS`` so that one unit file names every file the web application reads
(``deploy/systemd/cccd-central-web.service`` passes them as systemd credentials).
``--host`` and ``--port`` are gunicorn's business (``--bind``) and are refused here.

A missing or unreadable setting raises :class:`central.cli.CentralCliError` with the same
one-line message ``central web`` prints. With ``gunicorn --preload`` (the shipped unit) the
master stops at once (exit 1); without it a worker fails to boot and gunicorn stops with 3.
"""

from __future__ import annotations

import os
import shlex
from collections.abc import Mapping

from flask import Flask

from central.cli import CentralCliError, build_parser, web_overrides
from central.settings import SettingsError, load_settings
from central.web import create_app

ARGS_VARIABLE = "CENTRAL_WEB_ARGS"


def create(environ: Mapping[str, str] | None = None) -> Flask:
    """The Flask application for the ``central web`` options in ``CENTRAL_WEB_ARGS``."""
    env = os.environ if environ is None else environ
    words = shlex.split(env.get(ARGS_VARIABLE, ""))
    if not words:
        raise CentralCliError(f"{ARGS_VARIABLE} is empty: give at least --config FILE")
    if any(word.split("=", 1)[0] in ("--host", "--port") for word in words):
        raise CentralCliError(f"{ARGS_VARIABLE}: --host/--port belong to the WSGI server "
                              "(gunicorn --bind)")
    parser = build_parser()
    try:
        args = parser.parse_args(["web", *words])
    except SystemExit:  # argparse has printed the reason
        raise CentralCliError(f"{ARGS_VARIABLE}: not valid `central web` options: "
                              f"{' '.join(words)}") from None
    try:
        settings = load_settings(args.config)
    except SettingsError as exc:
        raise CentralCliError(str(exc)) from None
    return create_app(settings, web_overrides(settings, args))
