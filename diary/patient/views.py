"""Participant pages. Thin: they read the request, call a service, render."""

from __future__ import annotations

from flask import Blueprint, current_app, render_template
from flask_login import current_user

from diary import clock, db, study
from diary.auth import participant_required
from diary.models import Site
from diary.services import dosing

bp = Blueprint("patient", __name__)


@bp.get("/")
@participant_required
def today():
    participant = current_user.participant
    cfg = current_app.extensions["diary.study"]
    now = clock.now()
    local_today = study.local_date(now, participant.timezone)
    course = dosing.course_for(db.session(), participant, local_today, cfg)
    plan = dosing.load_plan(db.session(), course, cfg, now, participant.timezone) if course else []
    day_no = study.course_day_on(course.start_date, local_today, cfg) if course else None
    return render_template(
        "patient/today.html",
        course=course,
        plan=plan,
        day=plan[day_no - 1] if day_no else None,
        site=db.session().get(Site, participant.site_id),
        advice=cfg.advice(participant.language),
        course_length=cfg.course_length_days,
        local_today=local_today,
    )
