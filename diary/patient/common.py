"""Helpers every participant page shares: who is signed in, the study rules, page or fragment."""

from __future__ import annotations

import hashlib
import hmac
import uuid
from datetime import date, datetime
from functools import lru_cache

from babel import Locale
from babel.dates import format_date
from flask import current_app, render_template, request
from flask_babel import format_time, get_locale, to_user_timezone
from flask_login import current_user

from diary import db
from diary.auth.devices import SignedInParticipant, SiteOfParticipant
from diary.extensions import htmx
from diary.models import Site
from diary.patient import bp
from diary.study import StudyConfig


def cfg() -> StudyConfig:
    return current_app.extensions["diary.study"]


def me() -> SignedInParticipant:
    """The signed-in participant's own row as their pages read it, as it was when this request
    began (read-only: a change goes through the row, `db.session().get(Participant, me().id)`)."""
    return current_user.participant


def my_site() -> SiteOfParticipant | Site:
    # Loaded with the participant on each request (auth.devices.find_open); just signed in, read here.
    return current_user.site or db.session().get(Site, me().site_id)


def wants_fragment() -> bool:
    # Boosted and history-restore requests replace the whole page, so they get the whole page.
    return bool(htmx) and not htmx.boosted and not htmx.history_restore_request


def page_or_fragment(page: str, fragment: str, status: int = 200, **context):
    """The fragment template for an htmx request, else the page that includes it (Contact.app)."""
    return render_template(fragment if wants_fragment() else page, **context), status


def new_client_key() -> str:
    """A fresh idempotency key for a form: submitting the same form twice records once."""
    return uuid.uuid4().hex


def cache_partition() -> str:
    """An opaque per-session name under which the service worker keeps this person's pages."""
    participant = me()
    message = f"{participant.id}:{participant.auth_version}".encode()
    return hmac.new(current_app.secret_key.encode(), message, hashlib.sha256).hexdigest()[:24]


@bp.after_request
def _mark_responses(response):
    # The same URL answers with a page or a fragment, depending on this header.
    response.vary.add("HX-Request")
    if current_user.is_authenticated and getattr(current_user, "kind", None) == "participant":
        response.headers["X-Diary-Cache"] = cache_partition()
    return response


@bp.app_template_filter("day_date")
def day_date(value: date | datetime) -> str:
    """'Tue, Dec 1' / '12月1日周二': short enough for a 320 px screen (instants in local time)."""
    if isinstance(value, datetime):
        value = to_user_timezone(value).date()
    locale, pattern = _month_day(str(get_locale() or "zh"))
    return format_date(value, pattern, locale=locale)


@lru_cache(maxsize=8)
def _month_day(locale: str) -> tuple[Locale, str]:
    """The locale and its pattern for the CLDR skeleton MMMEd (what babel's format_skeleton looks up
    on every call; a page shows a dozen dates)."""
    parsed = Locale.parse(locale)
    return parsed, parsed.datetime_skeletons["MMMEd"]


@bp.app_template_filter("clock_time")
def clock_time(value: datetime) -> str:
    """The local wall time of an instant in the participant's time zone."""
    return format_time(value, "HH:mm")


@bp.app_context_processor
def _patient_globals():
    if request.blueprint != "patient":
        return {}
    from diary.patient.messages import reason_label

    return {"client_key": new_client_key, "reason_label": reason_label}
