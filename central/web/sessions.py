"""The logged-in session and the language of a request.

Kept apart from :mod:`central.web.app` so that the views, which the application factory
registers, import these without importing the factory (no import cycle; docs/design.md §2).
"""

from __future__ import annotations

import hashlib

from flask import g, session

from central.db.models import User
from central.web.i18n import DEFAULT_LANGUAGE, LANGUAGES


def password_version(user: User) -> str:
    """Changes when the password changes: a reset ends every other session of the user."""
    return hashlib.sha256(user.password_hash.encode("utf-8")).hexdigest()[:16]


def current_language() -> str:
    """The request's language: the session's choice, else the user's, else the default."""
    lang = session.get("lang") if session else None
    if lang not in LANGUAGES:
        user: User | None = g.get("user")
        lang = user.language if user is not None and user.language in LANGUAGES \
            else DEFAULT_LANGUAGE
    return str(lang)


def start_session(user: User) -> None:
    """Log ``user`` in: a fresh session (no fixation) bound to the password version."""
    lang = session.get("lang")
    session.clear()
    session.permanent = True
    session["uid"] = user.id
    session["pwv"] = password_version(user)
    if lang in LANGUAGES:
        session["lang"] = lang
