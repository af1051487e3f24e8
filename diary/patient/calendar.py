"""The course calendar: every day of a course with its status; earlier courses too."""

from __future__ import annotations

from flask import abort, render_template, request

from diary import clock, course_record, db, study
from diary.auth import participant_required
from diary.db import reads_only
from diary.inputs import id_arg
from diary.patient import bp
from diary.patient.common import cfg, me, my_site
from diary.services import day_cards, dosing
from diary.services.course_records import load_record


@bp.get("/calendar")
@reads_only
@participant_required
def calendar():
    now, participant = clock.now(), me()
    courses = day_cards.courses_of(db.session(), participant)
    wanted = request.args.get("course")
    if wanted is not None:
        # Someone else's course, or nonsense, is simply not found.
        course_id = request.args.get("course", type=id_arg)
        course = day_cards.own_course(db.session(), participant, course_id) if course_id else None
        if course is None:
            abort(404)
    else:
        course = dosing.course_for(db.session(), participant, study.local_date(now, participant.timezone), cfg())
    plans = course_record.course_days(load_record(db.session(), course.id), cfg(), now) if course else []
    return render_template("patient/calendar.html", courses=courses, course=course, plans=plans,
                           today=study.local_date(now, participant.timezone), site=my_site(), cfg=cfg())
