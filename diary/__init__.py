"""Hetrombopag dosing diary for trial NCT07243418."""

from __future__ import annotations

import gc
import logging
import os
from typing import Any

from flask import Flask, request, session
from flask.sessions import SecureCookieSessionInterface
from werkzeug.middleware.proxy_fix import ProxyFix

from diary import clock, db
from diary.config import load_settings
from diary.crypto import DataCipher
from diary.extensions import babel, compress, csrf, htmx, limiter, login_manager

# Files a browser fetches on its own, often in the background (the service worker refreshes cached
# assets after a page is shown): they never need the session, so they never (re)send its cookie.
_COOKIELESS_ENDPOINTS = frozenset({"static", "patient.service_worker", "patient.manifest"})


class _SessionInterface(SecureCookieSessionInterface):
    """Signed-cookie sessions, set only when there is something new to say:
    - a static file's response sets no cookie: a background refresh that finishes after sign-out
      would otherwise put the old session back over the sign-in page's new one, and the next
      sign-in would fail its CSRF check;
    - a signed-in (permanent) session slides its expiry by being re-sent once a day, on the first
      response of the day, not on every response: re-signing it for each check-off cost a thirtieth
      of the request's work and ~200 bytes down a phone line (issue 15). It still lives
      PERMANENT_SESSION_LIFETIME from the last day it was used."""

    def should_set_cookie(self, app: Flask, session) -> bool:
        if request.endpoint in _COOKIELESS_ENDPOINTS:
            return False
        if session.permanent:
            today = clock.now().date().isoformat()
            if session.get(_SESSION_SENT_ON) != today:
                session[_SESSION_SENT_ON] = today  # marks the session modified
        return session.modified


_SESSION_SENT_ON = "sent_on"


class _Diary(Flask):
    """Flask, with ensure_sync decided once per function. Flask asks it of the view and of every
    hook on every request (22 times a check-off), and each answer (inspect.iscoroutinefunction)
    is a handful of Python calls; the views and hooks are the same functions every time, so the
    answer is kept (issue 15). Flask documents ensure_sync as the method to override. A bounded
    number is kept, so that functions made per call (copy_current_request_context) cannot grow
    the table without end."""

    _KEPT = 4096

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._synced: dict = {}

    def ensure_sync(self, func):
        try:
            return self._synced[func]
        except KeyError:
            synced = super().ensure_sync(func)
            if len(self._synced) < self._KEPT:
                self._synced[func] = synced
            return synced
        except TypeError:  # an unhashable callable
            return super().ensure_sync(func)


# No inline script or style anywhere: htmx's own indicator style is switched off in base.html.
CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; font-src 'self'; object-src 'none'; base-uri 'self'; "
    "form-action 'self'; frame-ancestors 'none'; manifest-src 'self'; worker-src 'self'"
)


def settle() -> None:
    """Call once a long-running process has started (the app built, its modules imported): the
    objects made so far live as long as the process, so the cyclic collector stops re-walking them
    (gc.freeze). The collector stays on: a request's garbage is collected as before, but a full
    collection walks only what requests made, not the ~150,000 objects of Flask, SQLAlchemy and
    the templates (measured by bench/dashboard.py: two full collections of ≈100 ms each per
    adherence grid of 8,000 courses, otherwise). Under gunicorn (preload_app, gunicorn.conf.py)
    this runs in the master before the workers are forked, so the collector of a worker never
    writes to those objects and their pages stay shared (issue 15)."""
    gc.freeze()


def create_app(test_config: dict[str, Any] | None = None) -> Flask:
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    app = _Diary(
        __name__,
        instance_relative_config=True,
        template_folder=os.path.join(root, "templates"),
        static_folder=os.path.join(root, "static"),
    )
    os.makedirs(app.instance_path, exist_ok=True)
    app.session_interface = _SessionInterface()
    # Before any blueprint adds its rules: every <int:…> id is bounded to the schema's INTEGER.
    from diary.inputs import IdConverter

    app.url_map.converters["int"] = IdConverter
    app.config.from_mapping(load_settings(instance_path=app.instance_path))
    if test_config:
        app.config.from_mapping(test_config)
    from diary.messaging.filing import missing_template_ids

    # The web app still starts (participants keep their diary); the scheduler refuses to send
    # and /health reports the same names until SMS_TEMPLATES has them.
    for problem in missing_template_ids(app.config):
        logging.getLogger("diary").error("%s", problem)

    from diary import study

    app.extensions["diary.study"] = study.load_config(app.config["STUDY_CONFIG"])
    # Loaded at start-up so that a broken screening checklist stops the app, not a screening.
    from diary.eligibility import load_checklist

    app.extensions["diary.screening"] = load_checklist(app.config.get("SCREENING_CONFIG"))
    from diary.records import load_records_config

    app.extensions["diary.records"] = load_records_config(app.config.get("RECORDS_CONFIG"))
    old_keys = tuple(app.config.get("DATA_ENCRYPTION_OLD_KEYS") or ())
    app.extensions["diary.cipher"] = DataCipher(app.config["DATA_ENCRYPTION_KEY"], old_keys)
    from diary import audit

    # While a data key is being rotated out, a derived audit key still comes from the oldest key,
    # the one the trail was signed under (`flask rotate-key` asks for AUDIT_KEY to be pinned first).
    app.extensions["diary.audit_key"] = audit.derive_key((old_keys or (app.config["DATA_ENCRYPTION_KEY"],))[-1],
                                                         app.config.get("AUDIT_KEY"))
    audit.configure(app.extensions["diary.audit_key"])
    from diary.auth.services import configure_hasher

    configure_hasher(time_cost=app.config["ARGON2_TIME_COST"], memory_kib=app.config["ARGON2_MEMORY_KIB"],
                     parallelism=app.config["ARGON2_PARALLELISM"])
    if app.config["PROXY_FIX"]:
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=1, x_proto=1, x_host=1)

    # First: the request id, the access line and the request metrics see every request, also one
    # that CSRF or a rate limit refuses before its view.
    from diary import errors, logs, metrics, static_assets

    logs.init_app(app)
    metrics.init_app(app)
    errors.init_app(app)
    db.init_app(app)
    csrf.init_app(app)
    htmx.init_app(app)
    limiter.init_app(app)
    babel.init_app(app, locale_selector=_select_locale, timezone_selector=_select_timezone)
    _translate_templates_per_render(app)
    login_manager.init_app(app)

    from diary.auth import init_app as init_auth
    from diary.auth.views import bp as auth_bp
    from diary.cli import register as register_cli
    from diary.health import bp as health_bp
    from diary.health import template_context as health_context
    from diary.messaging.webhooks import bp as sms_bp
    from diary.patient.views import bp as patient_bp
    from diary.staff.views import bp as staff_bp

    init_auth(app)
    app.register_blueprint(auth_bp)
    app.register_blueprint(patient_bp)
    app.register_blueprint(staff_bp)
    app.register_blueprint(sms_bp)
    from diary.messaging.callbacks import bp as sms_cn_bp

    app.register_blueprint(sms_cn_bp)
    app.register_blueprint(health_bp)
    app.context_processor(health_context)
    register_cli(app)

    app.before_request(_refuse_nul_bytes)
    app.after_request(_security_headers)
    # Registered after the compressor, so it runs before it: it sets the static files' caching
    # before the compressor reads the response.
    compress.init_app(app)
    static_assets.init_app(app)
    # Last, so that it runs first: the request's writes are committed (or refused) before any other
    # hook sees the response, and a failed commit replaces it with an error page (diary/db.py).
    db.init_unit_of_work(app)
    app.context_processor(_template_globals)
    from diary import labels

    # A global rather than a per-page value: the patient pages' macro module (_status.html) is
    # imported without the page's context, built once and kept (issue 15), and reads its words
    # (lazy strings, translated for each page's reader) from here.
    app.jinja_env.globals["labels"] = labels
    return app


def _select_locale() -> str:
    from diary.errors import signed_in

    # signed_in(): even with the database down, the error page finds the person's language.
    language = getattr(signed_in(), "language", None)
    if language:
        return language
    if session.get("lang") in ("zh", "en"):
        return session["lang"]
    return request.accept_languages.best_match(["zh", "en"]) or "zh"


def _translate_templates_per_render(app: Flask) -> None:
    """Templates translate through flask_babel's translations for the locale of the moment, looked
    up once per rendered template rather than once per string (issue 15). flask_babel's own
    callables find the request context, the locale and the catalogue for each of a page's ~30
    strings: a seventh of a check-off's Python work. A render does not straddle a change of locale
    (force_locale wraps no template), so one look-up per render gives the same text. The look-up
    is kept with the request it was made for: a macro module imported without context is cached
    across requests, and must not carry one person's language into another's page."""
    from flask import has_request_context
    from flask_babel import get_translations
    from jinja2 import pass_context
    from markupsafe import Markup

    def catalogue(context):
        if not has_request_context():
            return get_translations()
        owner = request._get_current_object()
        kept = context.__dict__.get("_diary_catalogue")
        if kept is None or kept[0] is not owner:
            kept = context._diary_catalogue = (owner, get_translations())
        return kept[1]

    # Jinja's new-style semantics (autoescaped Markup, always %-formatted, `num` and `context`
    # among the values), called directly: `_` no longer resolves `gettext` by name and goes
    # through a second wrapper for each string.
    def formatted(context, text, variables):
        # As Jinja does: the catalogue's text is the app's own, so it is markup; the values put
        # into it are escaped by Markup's %. A text with no values and no "%" is what % would make
        # of it: most of a page's ~20 strings skip the formatting (issue 15).
        text = Markup(text) if context.eval_ctx.autoescape else text  # noqa: S704
        return text % variables if variables or "%" in text else text

    @pass_context
    def gettext(context, string, **variables):
        text = catalogue(context).ugettext(string)
        return formatted(context, text, variables)

    @pass_context
    def ngettext(context, singular, plural, num, **variables):
        variables.setdefault("num", num)
        text = catalogue(context).ungettext(singular, plural, num)
        return formatted(context, text, variables)

    @pass_context
    def pgettext(context, string_ctx, string, **variables):
        variables.setdefault("context", string_ctx)
        text = catalogue(context).upgettext(string_ctx, string)
        return formatted(context, text, variables)

    @pass_context
    def npgettext(context, string_ctx, singular, plural, num, **variables):
        variables.setdefault("context", string_ctx)
        variables.setdefault("num", num)
        text = catalogue(context).unpgettext(string_ctx, singular, plural, num)
        return formatted(context, text, variables)

    app.jinja_env.newstyle_gettext = True
    app.jinja_env.globals.update(_=gettext, gettext=gettext, ngettext=ngettext, pgettext=pgettext,
                                 npgettext=npgettext)


def _select_timezone() -> str | None:
    from diary.errors import signed_in

    return getattr(signed_in(), "timezone", None)


def _template_globals() -> dict[str, Any]:
    from flask_babel import get_locale

    locale = str(get_locale() or "zh")
    return {"html_lang": "zh-CN" if locale.startswith("zh") else "en"}


def _refuse_nul_bytes():
    """One guard for every form, query and JSON body: a NUL byte is never typed by a person,
    and PostgreSQL refuses it in text, so it is a clear 400 here rather than a 500 at commit."""
    from flask import jsonify
    from flask_babel import gettext as _

    from diary.inputs import carries_nul

    # Signed Twilio webhooks are answered 200 whatever they carry (a 4xx makes Twilio retry):
    # messaging/inbound.py strips NUL bytes from what it stores instead.
    if request.blueprint == "sms" or not carries_nul(request):
        return None
    message = _("Your entry contains a character that cannot be saved. Please check what you typed"
                " and try again.")
    if request.is_json:
        return jsonify(ok=False, error="bad_input", message=message), 400
    from werkzeug.exceptions import BadRequest

    raise BadRequest(description=message)


# Static files that are never a document: the policies below govern documents (and the worker,
# which is not a static file), so these skip ~400 bytes of headers each (issue 14, first load).
_NOT_DOCUMENTS = ("text/css", "text/javascript", "image/png")


# The policies every document gets, unless its view set its own.
_DOCUMENT_HEADERS = (("Content-Security-Policy", CSP), ("Referrer-Policy", "same-origin"),
                     ("X-Frame-Options", "DENY"), ("Permissions-Policy", "camera=(), microphone=(), geolocation=()"))


def _security_headers(response):
    headers = response.headers
    # One pass over the response's headers, not a scan per policy (Headers.setdefault): this runs
    # on every response (issue 15).
    present = {key.lower() for key in headers.keys()}
    missing = [("X-Content-Type-Options", "nosniff")] if "x-content-type-options" not in present else []
    if not (request.endpoint == "static" and response.mimetype in _NOT_DOCUMENTS):
        missing += [(key, value) for key, value in _DOCUMENT_HEADERS if key.lower() not in present]
        if request.is_secure and "strict-transport-security" not in present:
            missing.append(("Strict-Transport-Security", "max-age=31536000"))
        # Pages carry personal health data: never let a shared cache or the back button keep them.
        if response.mimetype == "text/html" and "cache-control" not in present:
            missing.append(("Cache-Control", "no-store"))
    headers.extend(missing)
    return response
