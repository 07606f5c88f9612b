"""The web forms, declared with WTForms: every field says what it accepts and a refusal names
the field and the reason (a 400 page, ``field: reason``).

Forms are plain :class:`wtforms.Form` fed with ``request.form``: the CSRF token is checked
for every POST by the app's ``CSRFProtect`` (Flask-WTF), so the forms do not check it twice.
Dates are ``dd/mm/yyyy`` (never the browser's locale), times ``HH:MM`` on the 24-hour clock.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import date, datetime, time
from typing import Any, TypeVar

from werkzeug.datastructures import MultiDict
from wtforms import (  # type: ignore[import-untyped]
    BooleanField,
    Field,
    FloatField,
    Form,
    IntegerField,
    PasswordField,
    SelectField,
    SelectMultipleField,
    StringField,
)
from wtforms.validators import (  # type: ignore[import-untyped]
    DataRequired,
    InputRequired,
    Length,
    NumberRange,
    Optional,
    Regexp,
    ValidationError,
)

from central.db.models import Role, SiteKind, UnitLevel
from central.web.errors import BadRequest
from central.web.periods import parse_dmy
from central.web.timeutil import VN

F = TypeVar("F", bound=Form)

HHMM = r"^([01][0-9]|2[0-3]):[0-5][0-9]$"
"""A local time of day, ``HH:MM`` on the 24-hour clock (``17:00``, never ``5pm``)."""
SITE_ID = r"^[a-z0-9](?:[a-z0-9._-]{0,62}[a-z0-9])?$"
DEVICE_ID = r"^[a-z0-9](?:[a-z0-9-]{0,62}[a-z0-9])?$"
UNIT_CODE = r"^[0-9A-Za-z][0-9A-Za-z._-]{0,15}$"
USERNAME = r"^[A-Za-z0-9][A-Za-z0-9._@-]{0,63}$"
NOTICE_REF = r"^[A-Za-z0-9][A-Za-z0-9._/-]{0,63}$"
"""The police portal's reference of a filed notice (its receipt number)."""
STAY_ID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
MIN_PASSWORD = 12
MAX_CAPACITY = 1_000_000
TOKEN_DEFAULT_DAYS = 90
TOKEN_MAX_DAYS = 365
"""API tokens live 1 … 365 days, 90 by default (docs/web.md): none lives for ever."""


class DateField(StringField):  # type: ignore[misc]
    """A date typed as ``dd/mm/yyyy`` (``YYYY-MM-DD`` is accepted from links); ``.date``."""

    date: date | None = None

    def pre_validate(self, form: Form) -> None:
        self.date = None
        text = (self.data or "").strip()
        if not text:
            return
        try:
            self.date = parse_dmy(text)
        except ValueError as exc:
            raise ValidationError(str(exc)) from None


class DateTimeField(StringField):  # type: ignore[misc]
    """A Vietnam-time instant typed as ``dd/mm/yyyy HH:MM``; ``.value`` is aware (UTC+7)."""

    value: datetime | None = None

    def pre_validate(self, form: Form) -> None:
        self.value = None
        text = (self.data or "").strip()
        if not text:
            return
        day_text, _, time_text = text.partition(" ")
        try:
            day = parse_dmy(day_text)
        except ValueError as exc:
            raise ValidationError(str(exc)) from None
        if not re.match(HHMM, time_text.strip()):
            raise ValidationError(f"{text!r}: expected dd/mm/yyyy HH:MM (24-hour clock)")
        hh, mm = (int(x) for x in time_text.strip().split(":"))
        self.value = datetime.combine(day, time(hh, mm), VN)


def _strip(value: Any) -> Any:
    return value.strip() if isinstance(value, str) else value


def bind(form_cls: type[F], data: Mapping[str, Any] | MultiDict[str, Any],
         **choices: list[str]) -> F:
    """Build ``form_cls`` from submitted data, set dynamic choices, validate: the form, or a
    :class:`BadRequest` naming every refused field and why."""
    formdata = data if isinstance(data, MultiDict) else MultiDict(data)
    form: F = form_cls(formdata=formdata)
    for name, values in choices.items():
        field: Any = getattr(form, name)
        field.choices = values
    if not form.validate():
        raise BadRequest("; ".join(f"{name}: {' '.join(str(e) for e in errors)}"
                                   for name, errors in form.errors.items()))
    return form


def _optional_int(label: str, low: int = 1, high: int = 2**31 - 1) -> IntegerField:
    return IntegerField(label, validators=[Optional(), NumberRange(low, high)],
                        filters=[_strip])


class SiteForm(Form):  # type: ignore[misc]
    """Create or update a site (``/admin/sites``)."""

    id = StringField("id", validators=[DataRequired("required"), Regexp(
        SITE_ID, message="lower-case letters, digits, '.', '_' or '-', 1 to 64 characters")],
        filters=[_strip])
    name = StringField("name", validators=[Length(max=200)], filters=[_strip])
    kind = SelectField("kind", choices=[k.value for k in SiteKind])
    unit_id = IntegerField("unit_id", validators=[InputRequired("an existing unit")])
    capacity = _optional_int("capacity", 0, MAX_CAPACITY)
    close_time = StringField("close_time", default="23:00", filters=[_strip], validators=[
        Optional(), Regexp(HHMM, message="expected HH:MM on the 24-hour clock "
                                         "(00:00 to 23:59), e.g. 17:00 — not 5pm")])


class UnitForm(Form):  # type: ignore[misc]
    """Create a unit (``/admin/units``)."""

    code = StringField("code", filters=[_strip], validators=[
        DataRequired("1 to 16 characters"),
        Regexp(UNIT_CODE, message="1 to 16 letters, digits, '.', '_' or '-'")])
    name = StringField("name", validators=[Length(max=200)], filters=[_strip])
    level = SelectField("level", choices=[v.value for v in UnitLevel])
    parent_id = _optional_int("parent_id")


class UnitUpdateForm(Form):  # type: ignore[misc]
    """Rename, recode or move a unit."""

    code = StringField("code", filters=[_strip], validators=[
        DataRequired("1 to 16 characters"),
        Regexp(UNIT_CODE, message="1 to 16 letters, digits, '.', '_' or '-'")])
    name = StringField("name", validators=[Length(max=200)], filters=[_strip])
    parent_id = _optional_int("parent_id")


class UserScopeForm(Form):  # type: ignore[misc]
    """A user's role, unit and sites."""

    role = SelectField("role", choices=[r.value for r in Role])
    unit_id = _optional_int("unit_id")
    site_ids = SelectMultipleField("site_ids", choices=[], validate_choice=True)
    active = BooleanField("active", false_values=("", "0", "false"))


class UserCreateForm(UserScopeForm):
    username = StringField("username", filters=[_strip], validators=[
        DataRequired("1 to 64 characters"),
        Regexp(USERNAME, message="1 to 64 letters, digits, '.', '_', '@' or '-'")])
    password = PasswordField("password", validators=[
        Length(min=MIN_PASSWORD, max=1024, message=f"at least {MIN_PASSWORD} characters")])


class PasswordForm(Form):  # type: ignore[misc]
    password = PasswordField("password", validators=[
        Length(min=MIN_PASSWORD, max=1024, message=f"at least {MIN_PASSWORD} characters")])


class TargetForm(Form):  # type: ignore[misc]
    metric = SelectField("metric", choices=[])
    unit_id = _optional_int("unit_id")
    value = FloatField("value", validators=[InputRequired("a number between 0 and 1"),
                                            NumberRange(0, 1, "a number between 0 and 1")])


class TokenForm(Form):  # type: ignore[misc]
    """A read-only API token: a name, an optional unit, a bounded lifetime in days."""

    name = StringField("name", filters=[_strip], validators=[
        DataRequired("required"), Length(max=100)])
    unit_id = _optional_int("unit_id")
    expires_days = IntegerField("expires_days", default=TOKEN_DEFAULT_DAYS, filters=[_strip],
                                validators=[Optional(), NumberRange(
                                    1, TOKEN_MAX_DAYS,
                                    f"a whole number of days from 1 to {TOKEN_MAX_DAYS} "
                                    f"(empty: {TOKEN_DEFAULT_DAYS}); tokens always expire")])

    @property
    def days(self) -> int:
        return int(self.expires_days.data or TOKEN_DEFAULT_DAYS)


class EnrolForm(Form):  # type: ignore[misc]
    device_id = StringField("device_id", filters=[_strip], validators=[
        DataRequired("required"), Regexp(
            DEVICE_ID, message="lower-case letters, digits and '-', 1 to 64 characters")])
    name = StringField("name", validators=[Length(max=200)], filters=[_strip])
    site_id = StringField("site_id", validators=[DataRequired("required")], filters=[_strip])
    direction = StringField("direction", filters=[_strip])


class StayIdsField(Field):  # type: ignore[misc]
    """``stay_ids`` given several times: each must be a stay id (UUID text)."""

    data: list[str]

    def process_formdata(self, valuelist: list[Any]) -> None:
        self.data = [str(v).strip() for v in valuelist if str(v).strip()]

    def pre_validate(self, form: Form) -> None:
        bad = [v for v in self.data if not STAY_ID.match(v)]
        if bad:
            raise ValidationError(f"not a stay id: {bad[0][:40]!r}")


class NoticeForm(Form):  # type: ignore[misc]
    """Stays marked notified to the police portal: which, its reference, when it was filed."""

    stay_ids = StayIdsField("stay_ids", default=[])
    export_id = _optional_int("export_id")
    reference = StringField("reference", filters=[_strip], validators=[
        DataRequired("the portal's reference is required"),
        Regexp(NOTICE_REF, message="1 to 64 letters, digits, '.', '_', '/' or '-'")])
    notified_at = DateTimeField("notified_at")
    back = StringField("back")


class StayNotifyForm(Form):  # type: ignore[misc]
    """One stay marked notified (the reference is optional here)."""

    reference = StringField("reference", filters=[_strip], validators=[
        Optional(), Regexp(NOTICE_REF, message="1 to 64 letters, digits, '.', '_', '/' or "
                                               "'-'")])
    notified_at = DateTimeField("notified_at")
    back = StringField("back")


class StayFilterForm(Form):  # type: ignore[misc]
    """The register's filters (query string): status, establishment, arrival dates
    ``from`` / ``to`` (the ``from`` field is attached below: it is a Python keyword)."""

    status = SelectField("status", choices=[], default="", validate_choice=True)
    site = StringField("site", filters=[_strip], validators=[Optional(), Length(max=64)])
    to = DateField("to")

    @property
    def first(self) -> date | None:
        field: DateField = self._fields["from"]
        return field.date

    @property
    def last(self) -> date | None:
        return self.to.date

    def validate(self, extra_validators: Any = None) -> bool:
        ok = bool(super().validate(extra_validators))
        if ok and self.first is not None and self.last is not None and self.last < self.first:
            self.to.errors = [*self.to.errors, "must not be before from"]
            return False
        return ok


setattr(StayFilterForm, "from", DateField("from"))


class ReportFilterForm(Form):  # type: ignore[misc]
    """A report's period and unit (query string or the submit form): ``period``, ``date``,
    ``from`` / ``to`` (attached below), ``unit``."""

    period = SelectField("period", choices=[], default="", validate_choice=True)
    date = DateField("date")
    to = DateField("to")
    unit = _optional_int("unit")

    def iso(self, name: str) -> str | None:
        """The date field ``name`` as ISO text (what central.web.periods.resolve reads)."""
        field: DateField = self._fields[name]
        return field.date.isoformat() if field.date is not None else None


setattr(ReportFilterForm, "from", DateField("from"))


PURPOSES = ("police-notice", "guest-request", "legal-request", "incident", "data-correction")
"""Why personal data is opened, exported or searched (docs/privacy.md §3): the accommodation
notice to the police, the guest's own request, a request under the law (police, court,
inspection), an incident at the site, correcting a guest's data."""
ID_NUMBER = r"^[0-9]{12}$"
"""A CCCD number: 12 digits (docs/cccd.md §1)."""


class PurposeForm(Form):  # type: ignore[misc]
    """The stated purpose every personal view, export and person search needs: a ``reason``
    from :data:`PURPOSES` and a free-text ``note`` (a file number, who asked)."""

    reason = SelectField("reason", choices=list(PURPOSES), validate_choice=True,
                         validators=[DataRequired(f"one of {', '.join(PURPOSES)}")])
    note = StringField("note", filters=[_strip], validators=[
        DataRequired("3 to 500 characters"),
        Length(min=3, max=500, message="3 to 500 characters")])

    def purpose(self) -> dict[str, str]:
        """What the audit log records of it."""
        return {"reason": str(self.reason.data), "note": str(self.note.data)}


class PersonSearchForm(PurposeForm):
    """Was this person at this site between these dates: the ID number (never stored or
    logged, only its masked form), a site, ``from`` / ``to`` (attached below)."""

    id_number = StringField("id_number", filters=[_strip], validators=[
        DataRequired("12 digits"), Regexp(ID_NUMBER, message="12 digits")])
    site = StringField("site", filters=[_strip], validators=[
        DataRequired("a site id"), Regexp(SITE_ID, message="a site id")])
    to = DateField("to", validators=[DataRequired("dd/mm/yyyy")])

    @property
    def first(self) -> date | None:
        field: DateField = self._fields["from"]
        return field.date

    def validate(self, extra_validators: Any = None) -> bool:
        ok = bool(super().validate(extra_validators))
        if ok and self.first is not None and self.to.date is not None \
                and self.to.date < self.first:
            self.to.errors = [*self.to.errors, "must not be before from"]
            return False
        return ok


setattr(PersonSearchForm, "from", DateField("from", validators=[DataRequired("dd/mm/yyyy")]))


class AuditFilterForm(Form):  # type: ignore[misc]
    """The audit log's filters: actor, action (prefix), target, ``from`` / ``to`` dates."""

    actor = StringField("actor", filters=[_strip], validators=[Optional(), Length(max=100)])
    action = StringField("action", filters=[_strip], validators=[Optional(), Length(max=64)])
    target = StringField("target", filters=[_strip], validators=[Optional(), Length(max=200)])
    to = DateField("to")

    @property
    def first(self) -> date | None:
        field: DateField = self._fields["from"]
        return field.date


setattr(AuditFilterForm, "from", DateField("from"))

