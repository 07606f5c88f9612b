"""Domain exceptions of the web application and API."""

from __future__ import annotations


class WebError(Exception):
    """Base of the web application's domain errors; ``status`` is the HTTP status to answer."""

    status = 400


class BadRequest(WebError):
    """A parameter the user or API client gave is invalid (the message names it)."""

    status = 400


class OutOfScope(WebError):
    """The principal's role or unit / site scope does not cover the object or route."""

    status = 403


class NotFoundError(WebError):
    """No such object."""

    status = 404


class PersonalDataUnavailable(WebError):
    """The data key is not configured, or a stay's sealed blob does not open."""

    status = 503
