"""JSON endpoints the phone replays its offline queue to (static/app.js).

Each record carries the key the phone generated when the participant tapped, so a replay, a
double tap or a retry returns the first record instead of writing a second one. The participant's
stated time is kept as stated; the server's own clock gives the received time.
"""

from __future__ import annotations

from datetime import datetime

from flask import abort, jsonify, request
from flask_wtf.csrf import generate_csrf

from diary import clock, db
from diary.auth import participant_required
from diary.inputs import json_id, json_int
from diary.patient import bp
from diary.patient.common import cfg, me
from diary.patient.messages import dose_error, symptom_error
from diary.services import day_cards
from diary.services.dosing import DoseLogError
from diary.services.symptoms import SymptomError, report_symptoms


def _payload() -> dict:
    data = request.get_json(silent=True)
    if not isinstance(data, dict):
        abort(400)
    return data


def _instant(value) -> datetime | None:
    """An ISO 8601 instant with its offset, as the phone's Date.toISOString() sends it."""
    if value is None:
        return None
    try:
        parsed = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError:
        raise DoseLogError("bad_time") from None
    if parsed.tzinfo is None:
        raise DoseLogError("bad_time")
    return parsed


def _refused(code: str, message: str):
    return jsonify(ok=False, error=code, message=message), 422


@bp.get("/sync/csrf")
@participant_required
def sync_token():
    """A fresh CSRF token: a queue may outlive the page (and session) it was recorded on."""
    return jsonify(csrf_token=generate_csrf())


@bp.post("/sync/dose")
@participant_required
def sync_dose():
    data, now = _payload(), clock.now()
    course_id, day = json_id(data.get("course_id")), json_int(data.get("day"), 1, 366)
    if course_id is None or day is None:
        return _refused("bad_request", dose_error("bad_request"))
    record = day_cards.own_record(db.session(), me(), course_id)
    if record is None:
        abort(404)
    try:
        # A time typed into a late-logging form is a local wall time in the participant's zone.
        if data.get("taken_time"):
            taken_at = day_cards.stated_time(data.get("taken_on"), data.get("taken_time"), me().timezone)
        else:
            taken_at = _instant(data.get("taken_at"))
        log = day_cards.log_from_diary(
            db.session(), cfg(), participant=me(), course_id=course_id, day=day, record=record,
            outcome=str(data.get("outcome")), client_key=data.get("client_key"), now=now,
            taken_at=taken_at, reason=data.get("reason"),
            fasting=data.get("fasting"),
        ).log
    except DoseLogError as error:
        return _refused(error.code, dose_error(error.code))
    return jsonify(ok=True, id=log.id, outcome=log.outcome, client_key=log.client_key,
                   taken_at=log.taken_at.isoformat() if log.taken_at else None,
                   received_at=log.received_at.isoformat())


@bp.post("/sync/symptoms")
@participant_required
def sync_symptoms():
    data, now = _payload(), clock.now()
    answers = data.get("symptoms")
    if not isinstance(answers, list) or not all(isinstance(a, dict) for a in answers):
        return _refused("bad_request", symptom_error("bad_request"))
    try:
        noticed_at = _instant(data.get("noticed_at")) or now
        # A phone clock far ahead must not date a symptom in the future.
        noticed_at = min(noticed_at, now)
        report = report_symptoms(
            db.session(), cfg(), participant=me(), symptoms=answers, noticed_at=noticed_at,
            client_key=day_cards.check_client_key(data.get("client_key")), source="participant",
            now=now, course_id=day_cards.running_course_id(db.session(), me(), cfg(), now),
            note=data.get("note") if isinstance(data.get("note"), str) else None,
        )
    except (SymptomError, DoseLogError) as error:
        return _refused(error.code, symptom_error(error.code))
    return jsonify(ok=True, id=report.id, danger=report.danger, client_key=report.client_key,
                   received_at=report.received_at.isoformat())
