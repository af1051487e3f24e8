"""Dose decisions: the rule table proposes, an investigator confirms or overrides and signs."""

from __future__ import annotations

from flask import abort, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_babel import ngettext
from flask_login import current_user

from diary import clock, db, study
from diary.auth import policy, staff_required
from diary.auth import services as auth
from diary.inputs import id_arg
from diary.models import LabResult, StaffUser
from diary.scheduling.alerts import queue_dose_change_notice
from diary.services import decisions as decision_service
from diary.services import labs as lab_service
from diary.staff.common import bp, cipher, course_in_scope, study_config
from diary.staff.forms import DecisionForm, options

DECISION_ERRORS = {
    "not_investigator": _l("Only an investigator can sign a dose decision."),
    "dose_not_a_level": _l("Choose one of the configured dose levels."),
    "no_such_day": _l("No such course day."),
    "effective_day_past": _l("That day has passed: a dose change takes effect from today at the earliest."),
}


def _lab(course, lab_id: int | None) -> LabResult:
    labs = [lab for lab in lab_service.course_labs(db.session(), course) if lab.course_day > 0]
    if lab_id is not None:
        labs = [lab for lab in labs if lab.id == lab_id]
    if not labs:
        abort(404)
    return max(labs, key=lambda lab: (lab.entered_at, lab.id))


def _default_day(course, participant, lab) -> int:
    cfg = study_config()
    today = study.course_day_on(course.start_date, study.local_date(clock.now(), participant.timezone), cfg)
    # From today if the course is running, else from the day after the draw.
    return today if today is not None else min(max(lab.course_day + 1, 1), cfg.course_length_days)


def _form(proposal, effective_day: int, formdata=None) -> DecisionForm:
    cfg = study_config()
    form = DecisionForm(formdata=formdata, dose_mg=proposal.suggestion.dose_mg, effective_day=effective_day)
    form.dose_mg.choices = options([(float(mg), ngettext("%(mg)s mg (%(num)d tablet)", "%(mg)s mg (%(num)d tablets)",
                                                         study.tablet_count(mg, cfg), mg=f"{mg:g}")
                                     if mg else _("0 mg — hold"))
                                    for mg in cfg.dose_levels_mg])
    form.effective_day.choices = options((d, str(d)) for d in range(1, cfg.course_length_days + 1))
    return form


@bp.get("/courses/<int:course_id>/decision")
@staff_required()
def decision(course_id: int):
    """The proposal for a blood count; investigators see the signing form, nurses see who signs."""
    course, p = course_in_scope(course_id)
    lab = _lab(course, request.args.get("lab", type=id_arg))
    day = request.args.get("day", type=int) or _default_day(course, p, lab)
    day = min(max(day, 1), study_config().course_length_days)
    proposal = decision_service.propose(db.session(), study_config(), course=course, lab=lab, effective_day=day)
    return render_template("staff/decision.html", p=p, course=course, proposal=proposal,
                           form=_form(proposal, day), effective_day=day,
                           signed=decision_service.course_decisions(db.session(), course))


@bp.post("/courses/<int:course_id>/decision")
@staff_required("investigator")
def sign_decision(course_id: int):
    course, p = course_in_scope(course_id)
    cfg, s, now = study_config(), db.session(), clock.now()
    lab = _lab(course, request.form.get("lab_id", type=id_arg))
    day = request.form.get("effective_day", type=int) or _default_day(course, p, lab)
    day = min(max(day, 1), cfg.course_length_days)
    proposal = decision_service.propose(s, cfg, course=course, lab=lab, effective_day=day)
    form = _form(proposal, day, formdata=request.form)

    def again(status: int, message: str | None = None):
        if message:
            flash(message, "error")
        return render_template("staff/decision.html", p=p, course=course, proposal=proposal, form=form,
                               effective_day=day, signed=decision_service.course_decisions(s, course)), status

    if not form.validate():
        return again(400)
    signer = s.get(StaffUser, current_user.id)
    try:
        auth.reauthenticate(s, signer, form.password.data, now, policy())
    except auth.SignInError:
        db.commit_now()  # the wrong password counts towards the lock-out, though nothing is signed
        form.password.errors = [_("The password is not correct; nothing was signed.")]
        return again(401)
    try:
        signed = decision_service.sign_decision(
            s, cfg, course=course, signer=signer, effective_day=form.effective_day.data,
            dose_mg=form.dose_mg.data, current_dose_mg=proposal.current_dose_mg, now=now, lab=lab,
            baseline_plt=proposal.baseline_plt, override_reason=form.override_reason.data)
    except decision_service.DecisionError as exc:
        if exc.code == "reason_required":
            form.override_reason.errors = [_("The dose differs from the suggestion: give a reason.")]
            return again(400)
        if exc.code == "effective_day_past":
            form.effective_day.errors = [str(DECISION_ERRORS[exc.code])]
            return again(400)
        return again(400, _("Not signed: %(why)s", why=str(DECISION_ERRORS.get(exc.code, exc.code))))
    # The dose-change SMS goes in the same transaction as the decision (DESIGN §4 outbox).
    queue_dose_change_notice(s, cipher(), p, course, signed, now)
    what = _("hold") if signed.dose_mg == 0 else _("%(mg)s mg", mg=f"{signed.dose_mg:g}")
    flash(_("Signed: %(what)s from day %(day)d. The participant's calendar follows it and an SMS is queued.",
            what=what, day=signed.effective_day), "success")
    return redirect(url_for("staff.participant", participant_id=p.id, _anchor=f"course-{course.id}"))
