"""Protocol deviations: the participant's log with the software's proposals, staff decisions, site list."""

from __future__ import annotations

from flask import abort, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_login import current_user
from flask_wtf import FlaskForm
from sqlmodel import select
from wtforms import DateField, SelectField, TextAreaField
from wtforms.validators import InputRequired, Length, Optional

from diary import clock, db
from diary.auth import participant_in_scope, staff_required
from diary.models import Participant, ProtocolDeviation
from diary.services import deviations as service
from diary.staff import records_vocab
from diary.staff.accountability import records_config, staff_names
from diary.staff.common import bp, study_config
from diary.staff.forms import options

ERRORS = {
    ("category", "invalid"): _l("Choose a category."),
    ("description", "required"): _l("Describe the deviation."),
    ("occurred_on", "invalid"): _l("Enter a date that is not in the future."),
    ("classification", "required"): _l("Classify the deviation as minor or major."),
    ("reason", "required"): _l("Give a reason."),
    ("action", "not_allowed"): _l("This deviation can no longer be changed this way."),
    ("action", "investigator_only"): _l("Only an investigator can close a deviation."),
    ("entry", "already_changed"): _l("This deviation was changed by someone else; open it again."),
}


class DeviationForm(FlaskForm):
    category = SelectField(_l("Category"))
    description = TextAreaField(_l("Description"), validators=[InputRequired(_l("Describe the deviation.")),
                                                                Length(max=1000)])
    occurred_on = DateField(_l("Date of the deviation"), validators=[InputRequired(_l("Enter a date."))])
    classification = SelectField(_l("Classification"))


class DecisionForm(FlaskForm):
    action = SelectField(_l("Decision"), validate_choice=False)
    classification = SelectField(_l("Classification"), validators=[Optional()], validate_choice=False)
    reason = TextAreaField(_l("Reason"), validators=[Optional(), Length(max=500)])


def _choices(form) -> None:
    rules = records_config().deviations
    if hasattr(form, "category"):
        form.category.choices = options((c, records_vocab.DEVIATION_CATEGORY.get(c, c)) for c in rules.categories)
    form.classification.choices = options([("", "—")] + list(records_vocab.CLASSIFICATION.items()))


def _refused(exc) -> str:
    return str(ERRORS.get((exc.field, exc.code), _l("Please check this field.")))


def _page(p: Participant, form: DeviationForm, status: int = 200):
    s = db.session()
    rows = list(s.exec(select(ProtocolDeviation).where(ProtocolDeviation.participant_id == p.id)).all())
    decision = DecisionForm(formdata=None)
    _choices(decision)
    return render_template("staff/records/deviations.html", p=p, form=form, decision=decision,
                           deviations=service.current(rows), history=rows, staff_names=staff_names()), status


@bp.route("/participants/<int:participant_id>/deviations", methods=["GET", "POST"])
@staff_required()
def deviations(participant_id: int):
    """The log; opening it first proposes what the records show (each finding once, by its key)."""
    p = participant_in_scope(participant_id)
    s = db.session()
    form = DeviationForm() if request.method == "POST" else DeviationForm(formdata=None)
    _choices(form)
    if request.method == "POST":
        if current_user.role not in ("nurse", "investigator"):
            abort(403)
        if form.validate():
            try:
                service.log(s, records_config(), participant=p, category=form.category.data,
                            description=form.description.data, occurred_on=form.occurred_on.data,
                            classification=form.classification.data or None, staff_id=current_user.id,
                            now=clock.now())
            except service.DeviationError as exc:
                getattr(form, exc.field).errors = [_refused(exc)]
            else:
                flash(_("Deviation logged."), "success")
                return redirect(url_for("staff.deviations", participant_id=p.id))
        return _page(p, form, 400)
    service.scan(s, study_config(), records_config(), p, clock.now())
    return _page(p, form)


@bp.post("/deviations/<int:deviation_id>/decision")
@staff_required("nurse", "investigator")
def decide_deviation(deviation_id: int):
    s = db.session()
    dev = s.get(ProtocolDeviation, deviation_id)
    if dev is None:
        abort(404)
    p = participant_in_scope(dev.participant_id)
    form = DecisionForm()
    _choices(form)
    if not form.validate():
        flash(_("Choose a decision."), "error")
        return _page(p, _new_form(), 400)
    try:
        service.decide(s, records_config(), dev=dev, action=form.action.data, staff_id=current_user.id,
                       staff_role=current_user.role, now=clock.now(), reason=form.reason.data,
                       classification=form.classification.data or None)
    except service.DeviationError as exc:
        if exc.code == "investigator_only":
            abort(403)
        flash(_refused(exc), "error")
        return _page(p, _new_form(), 400)
    flash(_("Deviation updated."), "success")
    return redirect(url_for("staff.deviations", participant_id=p.id))


def _new_form() -> DeviationForm:
    form = DeviationForm(formdata=None)
    _choices(form)
    return form


@bp.get("/deviations")
@staff_required()
def deviation_list():
    """Open deviations (proposed or confirmed, not closed) at the staff member's sites, with what the
    software can see proposed first."""
    s = db.session()
    service.scan_sites(s, study_config(), records_config(), current_user.site_ids, clock.now())
    query = select(ProtocolDeviation, Participant.study_number).join(
        Participant, Participant.id == ProtocolDeviation.participant_id)
    if current_user.site_ids is not None:
        query = query.where(Participant.site_id.in_(sorted(current_user.site_ids)))
    rows = s.exec(query).all()
    numbers = {d.id: n for d, n in rows}
    open_rows = [d for d in service.current([d for d, _n in rows]) if d.status in ("proposed", "confirmed")]
    return render_template("staff/records/deviation_list.html", rows=[(d, numbers[d.id]) for d in open_rows])
