"""The restricted, audited person search (docs/privacy.md §3): "was this person at this site
between these dates". The officer types the ID number; the centre turns it into the person's
``subject`` with the province's and the centre's subject keys (:mod:`central.subjects`) and
looks for events and stays of that subject at one site in the principal's scope. The ID number
is never stored, logged or shown back: the audit log and the page carry only its masked form
(last 4 digits). Only :data:`~central.web.security.SEARCH_ROLES` may search, always with a
stated purpose.
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

from flask import Blueprint, current_app, render_template, request
from sqlalchemy import select

from central.db.models import Event, Stay
from central.subjects import SubjectError, SubjectKeys, subject_for
from central.web.errors import PersonalDataUnavailable
from central.web.forms import PURPOSES, PersonSearchForm, bind
from central.web.security import (
    SEARCH_ROLES,
    audit,
    current_scope,
    db_session,
    get_site,
    require_roles,
    scoped_sites,
)
from central.web.timeutil import day_start_utc
from wire.masking import mask_id

bp = Blueprint("people", __name__, url_prefix="/people")
RESULT_LIMIT = 500
"""At most this many events are listed (the count is exact)."""


def subject_key() -> bytes:
    """The province's subject key: ``SUBJECT_KEY`` (bytes) or the file ``SUBJECT_KEY_PATH``;
    without it there is no search (503)."""
    value: Any = current_app.config.get("SUBJECT_KEY")
    if isinstance(value, bytes) and value:
        return value
    path = current_app.config.get("SUBJECT_KEY_PATH")
    if path:
        try:
            return Path(path).read_bytes()
        except OSError:
            pass
    raise PersonalDataUnavailable("SUBJECT_KEY")


def centre_subject_key() -> bytes | None:
    """The centre subject key (``CENTRE_SUBJECT_KEY`` bytes or the file
    ``CENTRE_SUBJECT_KEY_PATH``); None when the collector stores legacy subjects."""
    value: Any = current_app.config.get("CENTRE_SUBJECT_KEY")
    if isinstance(value, bytes) and value:
        return value
    path = current_app.config.get("CENTRE_SUBJECT_KEY_PATH")
    if path:
        try:
            return Path(path).read_bytes()
        except OSError:
            raise PersonalDataUnavailable("CENTRE_SUBJECT_KEY") from None
    return None


def stored_subject(id_number: str) -> str:
    """The subject the database holds for ``id_number`` (:mod:`central.subjects`): keyed with
    the centre subject key when there is one, else the legacy value."""
    province, centre = subject_key(), centre_subject_key()
    if centre is None:
        return subject_for(id_number, province)
    return SubjectKeys(centre, province).for_id_number(id_number)


@bp.route("/search", methods=["GET", "POST"])
@require_roles(*SEARCH_ROLES)
def search() -> str:
    """GET: the form. POST (CSRF): the search, audited with its purpose and the masked ID."""
    db = db_session()
    sites = scoped_sites(db, current_scope())
    context: dict[str, Any] = {"sites": sites, "purposes": PURPOSES, "result": None}
    if request.method == "GET":
        return render_template("person_search.html", **context)
    form = bind(PersonSearchForm, request.form, reason=list(PURPOSES))
    site = get_site(str(form.site.data))
    first, last = form.first, form.to.date
    assert first is not None and last is not None
    id_number = str(form.id_number.data)
    masked = mask_id(id_number)
    try:
        subject = stored_subject(id_number)
    except SubjectError:
        raise PersonalDataUnavailable("SUBJECT_KEY") from None
    del id_number
    start, end = day_start_utc(first), day_start_utc(last + timedelta(days=1))
    events = list(db.execute(
        select(Event.occurred_at, Event.kind, Event.method, Event.device_id)
        .where(Event.site_id == site.id, Event.subject == subject,
               Event.occurred_at >= start, Event.occurred_at < end)
        .order_by(Event.occurred_at).limit(RESULT_LIMIT + 1)))
    stays = list(db.scalars(select(Stay).where(
        Stay.site_id == site.id, Stay.subject == subject, Stay.started_at < end,
        (Stay.ended_at.is_(None)) | (Stay.ended_at >= start)).order_by(Stay.started_at)))
    audit("person.search", masked, {
        "site": site.id, "from": first.isoformat(), "to": last.isoformat(),
        **form.purpose(), "events": min(len(events), RESULT_LIMIT), "stays": len(stays)})
    context["result"] = {"masked": masked, "site": site, "first": first, "last": last,
                         "events": events[:RESULT_LIMIT], "more": len(events) > RESULT_LIMIT,
                         "stays": stays}
    return render_template("person_search.html", **context)
