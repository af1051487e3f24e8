"""Error pages: every 4xx/5xx a person can meet, in their language and their area's style.

- A participant sees the participant layout, staff the staff layout, each with a way back.
- An htmx request gets a fragment for the page's message area (#request-error, base.html): the
  response says so with HX-Retarget, and base.html's htmx config swaps 4xx/5xx answers.
- A JSON request (offline sync) gets JSON; the signed SMS webhooks get a bare status.
- A CSRF failure on a form registered with `keep_typed` re-renders that form with what was typed
  and a fresh token; an htmx form keeps its values in the page (static/app.js retries with the
  token this answer carries).
- Werkzeug's English pages never reach anyone: every HTTPException ends here.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from urllib.parse import urlsplit

from flask import Flask, Response, current_app, g, jsonify, render_template, request, url_for
from flask_babel import gettext as _
from flask_login import current_user
from flask_wtf.csrf import CSRFError, generate_csrf
from werkzeug.exceptions import BadRequest, HTTPException, InternalServerError

from diary.extensions import htmx

log = logging.getLogger(__name__)
MESSAGE_AREA = "#request-error"
# Endpoint -> a function that answers a CSRF failure on it by showing the form again, filled in.
_KEEP_TYPED: dict[str, Callable[[str], object]] = {}


def keep_typed(endpoint: str):
    """Register `view(message)` to answer a CSRF failure on `endpoint` with the form as typed."""

    def register(fn):
        _KEEP_TYPED[endpoint] = fn
        return fn

    return register


def _titles() -> dict[int, tuple[str, str]]:
    return {
        400: (_("This request could not be used"),
              _("Something in what was sent could not be read. Please go back and try again.")),
        403: (_("No access"), _("You do not have access to this page.")),
        404: (_("Page not found"),
              _("This page does not exist. The link may be incomplete or out of date.")),
        405: (_("Not possible here"), _("This page cannot be used that way.")),
        409: (_("Changed at the same moment"),
              _("This was changed at the same moment from somewhere else, so nothing was saved. Please"
                " reload the page and try again.")),
        413: (_("Too large"), _("What was sent is too large. Please send less at once.")),
        429: (_("Too many attempts"), _("Too many attempts in a short time. Please wait a minute and try again.")),
        500: (_("Something went wrong"),
              _("Something went wrong on our side; it is not your fault. Please try again in a few"
                " minutes. If it keeps happening, call your study team.")),
    }


def _csrf_text() -> tuple[str, str]:
    return (_("This page had expired"),
            _("This page had been open too long, so nothing was saved. Please try again."))


def area() -> str:
    """'staff' or 'patient': the person's own area, else the area of the address."""
    user = signed_in()
    if user is not None:
        return "staff" if getattr(user, "kind", None) == "staff" else "patient"
    return "staff" if request.blueprint == "staff" or request.path.startswith("/staff") else "patient"


def signed_in():
    """The signed-in person, or None. Loading them reads the database, which may be what failed:
    then this request goes on as anonymous, so that the language choice and every template (which
    Flask-Login gives current_user) work without the database."""
    try:
        user = current_user._get_current_object()
    except Exception:  # noqa: BLE001 - an error page must render whatever broke
        g._login_user = current_app.login_manager.anonymous_user()
        return None
    return user if user.is_authenticated else None



def _home() -> str:
    return url_for("staff.home") if area() == "staff" else url_for("patient.today")


def _back() -> str | None:
    """The page the person came from, when it is one of ours (never an open redirect)."""
    source = request.headers.get("HX-Current-URL") or request.referrer or ""
    parts = urlsplit(source)
    if parts.netloc and parts.netloc != request.host:
        return None
    if not parts.path.startswith("/") or parts.path.startswith("//") or parts.path == request.path:
        return None
    return parts.path + (f"?{parts.query}" if parts.query else "")


def _layout() -> str:
    user = signed_in()
    if area() == "staff":
        return "staff/base.html" if user is not None else "auth/staff_base.html"
    return "patient/base.html" if user is not None else "auth/patient_base.html"


def _wants_json() -> bool:
    if request.is_json or request.path.startswith("/sync/"):
        return True
    best = request.accept_mimetypes.best_match(["text/html", "application/json"])
    return best == "application/json" and request.accept_mimetypes[best] > request.accept_mimetypes["text/html"]


def _describe(error: HTTPException) -> tuple[str, str]:
    if isinstance(error, CSRFError):
        return _csrf_text()
    code = error.code or 500
    title, text = _titles().get(code, _titles()[500 if code >= 500 else 400])
    # Our own code raises a plain BadRequest with a translated, more precise description (a NUL
    # byte). Any other description is English: Werkzeug's defaults (also through a base class, as
    # BadRequestKeyError's), or Flask-Limiter's "10 per 1 minute".
    english = {getattr(k, "description", None) for k in type(error).__mro__}
    if type(error) is BadRequest and isinstance(error.description, str) and error.description not in english:
        text = error.description
    return title, text


def render_error(error: HTTPException):
    code = error.code or 500
    signed_in()  # first: the language and the layout depend on it
    title, text = _describe(error)
    if request.blueprint == "sms":
        return Response("", status=code)  # Twilio reads only the status
    if _wants_json():
        name = "csrf_expired" if isinstance(error, CSRFError) else _slug(error)
        return jsonify(ok=False, error=name, message=text), code
    if isinstance(error, CSRFError) and request.method == "POST" and request.endpoint in _KEEP_TYPED:
        try:
            return _KEEP_TYPED[request.endpoint](
                _("This page had been open too long, so nothing was saved yet. What you entered is still"
                  " here: please check it and send it again."))
        except LookupError:
            pass  # nobody to show it to: the plain page
        except Exception:  # noqa: BLE001 - fall back to the plain page
            log.exception("could not show the form again after a CSRF failure")
    context = {"code": code, "title": title, "text": text, "home": _home(), "back": _back(),
               "reference": _reference(), "area": area()}
    if htmx and not htmx.history_restore_request:
        response = Response(render_template("errors/_message.html", **context), status=code)
        response.headers["HX-Retarget"] = MESSAGE_AREA
        response.headers["HX-Reswap"] = "innerHTML"
        if isinstance(error, CSRFError):
            # The page keeps what was typed; app.js puts this token in and the next tap works.
            response.headers["X-CSRF-Token"] = generate_csrf()
    else:
        try:
            body = render_template("errors/page.html", layout=_layout(), **context)
        except Exception:  # noqa: BLE001 - e.g. the database is down and the layout reads it
            log.exception("could not render the %s page in its layout", code)
            bare = "auth/staff_base.html" if area() == "staff" else "auth/patient_base.html"
            body = render_template("errors/page.html", layout=bare, **context)
        response = Response(body, status=code)
    if code == 405 and getattr(error, "valid_methods", None):
        response.headers["Allow"] = ", ".join(error.valid_methods)
    return response


def _slug(error: HTTPException) -> str:
    return (error.name or "error").lower().replace(" ", "_")


def _reference() -> str | None:
    from diary.logs import request_id

    return request_id()


def _server_error(error: Exception):
    if isinstance(error, HTTPException):
        return render_error(error)
    return render_error(InternalServerError(original_exception=error))


def _log_exception(app: Flask):
    def log_exception(exc_info) -> None:
        # Flask's own line names request.path, and paths carry activation tokens.
        app.logger.error("Exception on %s [%s]", request.endpoint or "-", request.method, exc_info=exc_info)

    return log_exception


def init_app(app: Flask) -> None:
    app.register_error_handler(HTTPException, render_error)
    app.register_error_handler(InternalServerError, _server_error)
    app.log_exception = _log_exception(app)  # type: ignore[method-assign]
