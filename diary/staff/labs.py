"""Blood counts: entry with clear refusals, correction with a reason; each PLT leads to a proposal."""

from __future__ import annotations

from flask import abort, flash, redirect, render_template, url_for
from flask_babel import gettext as _
from flask_login import current_user

from diary import clock, db, study
from diary.auth import staff_required
from diary.models import LabResult, Site
from diary.services import labs as lab_service
from diary.staff.common import bp, course_in_scope, study_config
from diary.staff.forms import LabCorrectionForm, LabForm

NAMES = {"plt": "PLT", "hb": "Hb", "anc": "ANC"}


def refusal(cfg, field: str, code: str = "") -> str:
    """The message for a refused value: what is wrong and what range is plausible."""
    if field == "plt" and code == "confirm":
        return _("A PLT this low (≤ %(tier)s×10⁹/L) is critical. Check the report for a typo, then tick the "
                 "box below to confirm it and save again.", tier=f"{cfg.rules.confirm_at_or_below:g}")
    if field in NAMES:
        low, high = getattr(cfg, f"{field}_range")
        return _("%(name)s must be between %(low)s and %(high)s %(unit)s. Check the report for a typo.",
                 name=NAMES[field], low=f"{low:g}", high=f"{high:g}", unit=study.LAB_UNITS[field])
    if field == "course_day":
        return _("The course day must be between 0 (baseline) and %(n)d.", n=cfg.course_length_days)
    if field == "drawn_on":
        return _("The draw date cannot be in the future.")
    return _("Please check this field.")


def _check_date(form, participant) -> bool:
    if form.drawn_on.data > study.local_date(clock.now(), participant.timezone):
        form.drawn_on.errors = [refusal(study_config(), "drawn_on")]
        return False
    return True


@bp.post("/courses/<int:course_id>/labs")
@staff_required()
def enter_lab(course_id: int):
    course, p = course_in_scope(course_id)
    cfg, s = study_config(), db.session()
    form = LabForm(prefix=f"c{course.id}")
    if form.validate() and _check_date(form, p):
        try:
            lab = lab_service.record_lab(
                s, cfg, course=course, course_day=form.course_day.data, drawn_on=form.drawn_on.data,
                plt=form.plt.data, hb=form.hb.data, anc=form.anc.data, staff_id=current_user.id, now=clock.now(),
                confirmed=form.confirm_low.data)
        except lab_service.LabError as exc:
            getattr(form, exc.field).errors = [refusal(cfg, exc.field, exc.message)]
        else:
            grade = study.platelet_grade(lab.plt, cfg, s.get(Site, p.site_id).plt_lln)
            flash(_("PLT %(plt)s×10⁹/L saved (CTCAE grade %(grade)d).", plt=f"{lab.plt:g}", grade=grade), "success")
            if lab.course_day == 0:
                return redirect(url_for("staff.participant", participant_id=p.id, _anchor=f"course-{course.id}"))
            return redirect(url_for("staff.decision", course_id=course.id, lab=lab.id))
    return render_template("staff/lab_form.html", p=p, course=course, form=form,
                           action=url_for("staff.enter_lab", course_id=course.id)), 400


@bp.route("/labs/<int:lab_id>/correct", methods=["GET", "POST"])
@staff_required()
def correct_lab(lab_id: int):
    s, cfg = db.session(), study_config()
    lab = s.get(LabResult, lab_id)
    if lab is None:
        abort(404)
    course, p = course_in_scope(lab.course_id)
    form = LabCorrectionForm(obj=lab)
    status = 200
    if form.is_submitted():
        status = 400
        if form.validate() and _check_date(form, p):
            try:
                lab_service.correct_lab(
                    s, cfg, lab=lab, course_day=form.course_day.data, drawn_on=form.drawn_on.data,
                    plt=form.plt.data, hb=form.hb.data, anc=form.anc.data, staff_id=current_user.id,
                    reason=form.reason.data, now=clock.now(), confirmed=form.confirm_low.data)
            except lab_service.LabError as exc:
                target = getattr(form, exc.field, None)
                message = (_("This result was already corrected.") if exc.field == "lab"
                           else refusal(cfg, exc.field, exc.message))
                if target is not None:
                    target.errors = [message]
                else:
                    flash(message, "error")
            else:
                flash(_("Blood count corrected."), "success")
                return redirect(url_for("staff.participant", participant_id=p.id, _anchor=f"course-{course.id}"))
    return render_template("staff/lab_form.html", p=p, course=course, form=form, lab=lab,
                           action=url_for("staff.correct_lab", lab_id=lab.id)), status
