"""Participant pages: today and one dose day. Thin: read the request, call a service, render.

Each action is a plain form post that redirects (works without JavaScript); an htmx request gets
the day card fragment back instead, and the rest of the page stays as it is.
"""

from __future__ import annotations

from datetime import datetime

from flask import abort, redirect, request, url_for

from diary import clock, db
from diary.auth import participant_required
from diary.course_record import CourseRecord
from diary.db import reads_only
from diary.patient import bp
from diary.patient.common import cfg, me, my_site, page_or_fragment, wants_fragment
from diary.patient.messages import dose_error
from diary.services import day_cards
from diary.services.dosing import DoseLogError


@bp.get("/")
@reads_only
@participant_required
def today():
    view = day_cards.today_view(db.session(), me(), cfg(), clock.now())
    return page_or_fragment("patient/today.html", "patient/_today.html", view=view, site=my_site(),
                            advice=cfg().advice(me().language), cfg=cfg(), changes=view.changes)


def _changes() -> list[day_cards.DoseChangeNotice]:
    return day_cards.dose_change_notices(db.session(), me(), cfg(), clock.now())


def _record_or_404(course_id: int, day: int) -> CourseRecord:
    # Another participant's course is answered exactly like one that does not exist.
    record = day_cards.own_day_record(db.session(), me(), course_id, day, cfg())
    if record is None:
        abort(404)
    return record


def _card(record: CourseRecord, day: int, now: datetime) -> day_cards.DayCard:
    return day_cards.card(record, day, now, me().timezone, cfg())


def _card_or_404(course_id: int, day: int) -> day_cards.DayCard:
    return _card(_record_or_404(course_id, day), day, clock.now())


def _render_card(card: day_cards.DayCard, *, error: str | None = None, done: str | None = None,
                 status: int = 200, reason_form: bool = False, changes: list | None = None):
    page = "patient/not_taken.html" if reason_form else "patient/day.html"
    fragment = "patient/_not_taken.html" if reason_form else "patient/_day_card.html"
    return page_or_fragment(page, fragment, status, card=card, error=error, done=done,
                            site=my_site(), advice=cfg().advice(me().language), cfg=cfg(),
                            reasons=cfg().not_taken_reasons, changes=changes or [])


@bp.get("/courses/<int:course_id>/days/<int:day>")
@reads_only
@participant_required
def day_page(course_id: int, day: int):
    card = _card_or_404(course_id, day)
    return _render_card(card, changes=[] if wants_fragment() else _changes())


@bp.get("/courses/<int:course_id>/days/<int:day>/not-taken")
@reads_only
@participant_required
def not_taken_form(course_id: int, day: int):
    return _render_card(_card_or_404(course_id, day), reason_form=True)


def _act(course_id: int, day: int, outcome: str):
    record = _record_or_404(course_id, day)
    form, now = request.form, clock.now()
    try:
        taken_at = None
        if outcome == "taken" and form.get("taken_time"):
            taken_at = day_cards.stated_time(form.get("taken_on"), form.get("taken_time"), me().timezone)
        logged = day_cards.log_from_diary(
            db.session(), cfg(), participant=me(), course_id=course_id, day=day,
            outcome=outcome,
            client_key=form.get("client_key"), now=now, taken_at=taken_at,
            reason=form.get("reason"), fasting=form.get("fasting"), record=record,
        )
    except DoseLogError as error:
        # The card as it was: nothing was written.
        return _render_card(_card(record, day, now), error=dose_error(error.code), status=422,
                            reason_form=outcome == "not_taken" and error.code == "reason_required")
    # The card as it is now, from the record the write was made against (not read a second time).
    card = _card(logged.record, day, now)
    if not wants_fragment():
        return redirect(url_for("patient.today") if card.is_today
                        else url_for("patient.day_page", course_id=course_id, day=day), 303)
    return _render_card(card, done=outcome)


@bp.post("/courses/<int:course_id>/days/<int:day>/taken")
@participant_required
def took_it(course_id: int, day: int):
    return _act(course_id, day, "taken")


@bp.post("/courses/<int:course_id>/days/<int:day>/not-taken")
@participant_required
def did_not_take_it(course_id: int, day: int):
    return _act(course_id, day, "not_taken")


@bp.post("/courses/<int:course_id>/days/<int:day>/undo")
@participant_required
def undo(course_id: int, day: int):
    return _act(course_id, day, "retracted")


# Registers the other participant routes on the same blueprint.
from diary.patient import calendar, dose_changes, pwa, settings, symptoms, sync  # noqa: E402, F401, I001
