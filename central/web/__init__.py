"""The collector's web application and JSON API (docs/design.md §2.4).

``create_app(config)`` builds the Flask app: blueprints ``auth``, ``dashboard`` (dashboard, site
and device pages, live updates over server-sent events), ``stays`` (accommodation register and
exports), ``reports``, ``admin`` (users, sites, units, devices and enrolment, targets, API tokens,
audit log) and ``api`` (``/api/v1``, read-only, described by ``/api/v1/openapi.json``).
"""

from __future__ import annotations

from central.web.factory import create_app

__all__ = ["create_app"]
