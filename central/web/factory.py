"""The web application: the core of :mod:`central.web.app` with the blueprints of the views.

The views import the core's session and language functions, so the core does not import the
views; this module imports both (no import cycle, docs/design.md §2).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from flask import Flask

from central.web import (
    api,
    views_admin,
    views_audit,
    views_auth,
    views_main,
    views_people,
    views_reports,
    views_security,
    views_stays,
)
from central.web.app import create_base_app


def create_app(config: Mapping[str, Any] | object,
               overrides: Mapping[str, Any] | None = None) -> Flask:
    """Build the web application: ``config`` and ``overrides`` as for
    :func:`central.web.app.create_base_app`, then every blueprint; the read-only API, which
    authenticates by bearer token, is exempt from CSRF."""
    app = create_base_app(config, overrides)
    for module in (views_auth, views_main, views_stays, views_reports, views_security,
                   views_people, views_admin, views_audit, api):
        app.register_blueprint(module.bp)
    app.extensions["csrf"].exempt(api.bp)
    return app
