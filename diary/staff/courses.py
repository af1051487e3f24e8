"""Signed investigator actions on a course: void it (entered in error) or end it early."""

from __future__ import annotations

from flask import flash, redirect, render_template, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_login import current_user

from diary import clock, db
from diary.auth import policy, staff_required
from diary.auth import services as auth
from diary.models import StaffUser
from diary.services import courses as course_service
from diary.staff.common import bp, course_in_scope, study_config
from diary.staff.forms import EndCourseEarlyForm, VoidCourseForm

COURSE_ERRORS = {
    ("reason", "required"): _l("Give a reason."),
    ("course", "already_voided"): _l("This course was already voided."),
    ("course", "voided"): _l("This course was voided; it cannot be ended early."),
    ("last_day", "outside_course"): _l("The last day must be a course day before the current last day."),
}


def _page(course, p, void_form, end_form, status=200):
    return render_template("staff/course_fix.html", course=course, p=p, void_form=void_form,
                           end_form=end_form, cfg=study_config()), status


@bp.get("/courses/<int:course_id>/fix")
@staff_required("investigator")
def course_fix(course_id: int):
    course, p = course_in_scope(course_id)
    return _page(course, p, VoidCourseForm(formdata=None), EndCourseEarlyForm(formdata=None))


def _signed(form, course, p, void_form, end_form, act):
    """Validate, re-authenticate the investigator (the signature), then act; errors re-render."""
    if not form.validate():
        return _page(course, p, void_form, end_form, 400)
    s, now = db.session(), clock.now()
    signer = s.get(StaffUser, current_user.id)
    try:
        auth.reauthenticate(s, signer, form.password.data, now, policy())
    except auth.SignInError:
        db.commit_now()  # the wrong password counts towards the lock-out, though nothing is signed
        form.password.errors = [_("The password is not correct; nothing was signed.")]
        return _page(course, p, void_form, end_form, 401)
    try:
        act(s, signer, now)
    except course_service.CourseError as exc:
        target = getattr(form, exc.field, form.reason)
        target.errors = [str(COURSE_ERRORS.get((exc.field, exc.code), exc.code))]
        return _page(course, p, void_form, end_form, 400)
    return None


@bp.post("/courses/<int:course_id>/void")
@staff_required("investigator")
def void_course(course_id: int):
    course, p = course_in_scope(course_id)
    form = VoidCourseForm()
    refused = _signed(form, course, p, form, EndCourseEarlyForm(formdata=None),
                      lambda s, signer, now: course_service.void_course(
                          s, course=course, reason=form.reason.data, signer=signer, now=now))
    if refused:
        return refused
    flash(_("Cycle %(n)d voided: it no longer sends reminders or counts in adherence; it stays in the audit trail "
            "and the export.", n=course.cycle_number), "success")
    return redirect(url_for("staff.participant", participant_id=p.id))


@bp.post("/courses/<int:course_id>/end-early")
@staff_required("investigator")
def end_course_early(course_id: int):
    course, p = course_in_scope(course_id)
    form = EndCourseEarlyForm()
    refused = _signed(form, course, p, VoidCourseForm(formdata=None), form,
                      lambda s, signer, now: course_service.end_course_early(
                          s, study_config(), course=course, last_day=form.last_day.data, reason=form.reason.data,
                          signer=signer, now=now))
    if refused:
        return refused
    flash(_("Cycle %(n)d ends after day %(day)d: later days are neither due nor missed.",
            n=course.cycle_number, day=course.last_day), "success")
    return redirect(url_for("staff.participant", participant_id=p.id, _anchor=f"course-{course.id}"))
