"""GET /health for monitoring, and the staff banner that says the scheduler is not ticking.

A dead scheduler means silent missed reminders, so its heartbeat is watched from both sides.
Counts and ages only: no personal data.
"""

from __future__ import annotations

import logging
from datetime import timedelta

from flask import Blueprint, current_app, jsonify
from sqlalchemy import text

from diary import clock, db
from diary.messaging.filing import missing_template_ids
from diary.scheduling import heartbeat

log = logging.getLogger(__name__)
bp = Blueprint("health", __name__)


def _stale_after() -> timedelta:
    return timedelta(minutes=current_app.config["SCHEDULER_STALE_MINUTES"])


@bp.get("/health")
def health():
    now = clock.now()
    session = db.session()
    body: dict = {"database": "ok"}
    try:
        session.exec(text("SELECT 1"))
        beat = heartbeat.last_beat(session)
        age = None if beat is None else int((now - beat.at).total_seconds())
        body["scheduler"] = {
            "last_tick": beat.at.isoformat() if beat else None,
            "age_seconds": age,
            "last_tick_ms": beat.duration_ms if beat else None,
            "stale": age is None or age > _stale_after().total_seconds(),
        }
        body["outbox"] = heartbeat.outbox_state(session, now)
    except Exception:
        log.exception("health check: database unavailable")
        body = {"database": "error", "status": "error"}
        return jsonify(body), 503
    # A template the configured provider would need but has no approved id for (issue 13).
    missing = missing_template_ids(current_app.config)
    body["sms"] = {"backend": current_app.config.get("SMS_BACKEND") or "console", "errors": missing}
    healthy = not body["scheduler"]["stale"] and not missing
    body["status"] = "ok" if healthy else "degraded"
    return jsonify(body), 200 if healthy else 503


def scheduler_stale() -> bool:
    """For the staff banner; a failing query shows the banner rather than hiding it."""
    try:
        return heartbeat.is_stale(db.session(), clock.now(), _stale_after())
    except Exception:
        log.exception("could not read the scheduler heartbeat")
        return True


def template_context() -> dict:
    # A function, not a value: only the staff pages that include the banner pay for the query.
    return {"scheduler_stale": scheduler_stale,
            "scheduler_stale_minutes": current_app.config["SCHEDULER_STALE_MINUTES"]}
