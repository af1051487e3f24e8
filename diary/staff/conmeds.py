"""Concomitant medications: the list and form per participant, corrections; prohibited-list warnings."""

from __future__ import annotations

from flask import abort, flash, redirect, render_template, request, url_for
from flask_babel import get_locale
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_login import current_user
from flask_wtf import FlaskForm
from sqlmodel import select
from wtforms import BooleanField, DateField, StringField, TextAreaField
from wtforms.validators import InputRequired, Length, Optional

from diary import clock, db
from diary.auth import participant_in_scope, staff_required
from diary.models import ConcomitantMedication, Participant
from diary.services import conmeds as service
from diary.staff.accountability import records_config
from diary.staff.common import bp, show_refusal, study_config

ERRORS = {
    ("drug", "required"): _l("Enter the medicine."),
    ("start_date", "invalid"): _l("Enter a start date that is not in the future."),
    ("stop_date", "before_start"): _l("The stop date cannot be before the start date."),
    ("reason", "required"): _l("Give a reason."),
    ("entry", "already_corrected"): _l("This entry was already corrected."),
}


class ConmedForm(FlaskForm):
    drug = StringField(_l("Medicine"), validators=[InputRequired(_l("Enter the medicine.")), Length(max=200)])
    dose = StringField(_l("Dose"), validators=[Optional(), Length(max=100)])
    route = StringField(_l("Route"), validators=[Optional(), Length(max=50)])
    start_date = DateField(_l("Start date"), validators=[InputRequired(_l("Enter a date."))])
    stop_date = DateField(_l("Stop date (empty: ongoing)"), validators=[Optional()])
    indication = StringField(_l("Indication"), validators=[Optional(), Length(max=200)])


class ConmedCorrectionForm(ConmedForm):
    retract = BooleanField(_l("Entered in error (remove from the list)"))
    reason = TextAreaField(_l("Reason for the correction"), validators=[Optional(), Length(max=500)])


def _save(form, p: Participant, supersedes=None):
    s = db.session()
    try:
        saved = service.record(
            s, study_config(), records_config(), participant=p, drug=form.drug.data, dose=form.dose.data,
            route=form.route.data, start_date=form.start_date.data, stop_date=form.stop_date.data,
            indication=form.indication.data, staff_id=current_user.id, now=clock.now(), supersedes=supersedes,
            reason=getattr(form, "reason", None) and form.reason.data,
            retract=bool(getattr(form, "retract", None) and form.retract.data))
    except service.ConmedError as exc:
        show_refusal(form, exc, ERRORS)
        return None
    lang = str(get_locale() or "zh")
    for rule in saved.matches:
        if rule.level == "prohibited":
            flash(_("Prohibited by the protocol: %(rule)s. Source: %(source)s", rule=rule.label(lang),
                    source=rule.source), "error")
        else:
            flash(_("Restricted by the protocol: %(rule)s. Source: %(source)s", rule=rule.label(lang),
                    source=rule.source), "error")
    if saved.proposed:
        flash(_("A protocol deviation is proposed: confirm or dismiss it."), "error")
    return saved


@bp.route("/participants/<int:participant_id>/conmeds", methods=["GET", "POST"])
@staff_required()
def conmeds(participant_id: int):
    p = participant_in_scope(participant_id)
    form = ConmedForm() if request.method == "POST" else ConmedForm(formdata=None)
    status = 200
    if request.method == "POST":
        if current_user.role not in ("nurse", "investigator"):
            abort(403)
        status = 400
        if form.validate() and _save(form, p) is not None:
            flash(_("Medication recorded."), "success")
            return redirect(url_for("staff.conmeds", participant_id=p.id))
    rows = list(db.session().exec(select(ConcomitantMedication)
                                  .where(ConcomitantMedication.participant_id == p.id)).all())
    return render_template("staff/records/conmeds.html", p=p, form=form, rows=service.current(rows), history=rows,
                           lang=str(get_locale() or "zh")), status


@bp.route("/conmeds/<int:conmed_id>/correct", methods=["GET", "POST"])
@staff_required("nurse", "investigator")
def correct_conmed(conmed_id: int):
    entry = db.session().get(ConcomitantMedication, conmed_id)
    if entry is None:
        abort(404)
    p = participant_in_scope(entry.participant_id)
    form = ConmedCorrectionForm() if request.method == "POST" else ConmedCorrectionForm(formdata=None, obj=entry)
    status = 200
    if request.method == "POST":
        status = 400
        if form.validate() and _save(form, p, supersedes=entry) is not None:
            flash(_("Entry corrected."), "success")
            return redirect(url_for("staff.conmeds", participant_id=p.id))
    return render_template("staff/records/conmed_form.html", p=p, form=form, entry=entry), status
