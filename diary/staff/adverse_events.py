"""Adverse events: the log, one-step drafts from a danger report or a critical PLT, SAE reporting."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import time

from flask import abort, flash, redirect, render_template, request, url_for
from flask_babel import get_locale
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_login import current_user
from flask_wtf import FlaskForm
from sqlmodel import select
from wtforms import BooleanField, DateField, SelectField, SelectMultipleField, StringField, TextAreaField
from wtforms.validators import InputRequired, Length, Optional
from wtforms.widgets import CheckboxInput, ListWidget

from diary import clock, db, study
from diary.auth import participant_in_scope, staff_required
from diary.models import AdverseEvent, Course, LabResult, Participant, SymptomReport
from diary.records import OTHER_TERM
from diary.services import adverse_events as service
from diary.staff import records_vocab
from diary.staff.accountability import records_config
from diary.staff.common import bp, show_refusal, study_config
from diary.staff.forms import options

ERRORS = {
    ("term", "unknown"): _l("Choose a term from the list."),
    ("term_text", "required"): _l("Describe the event in your words when the term is 'other'."),
    ("grade", "invalid"): _l("Choose the CTCAE grade."),
    ("onset_date", "required"): _l("Enter the onset date."),
    ("onset_date", "in_future"): _l("The date cannot be in the future."),
    ("end_date", "invalid"): _l("The end date must be between the onset date and today."),
    ("sae_criteria", "required"): _l("A serious event needs at least one seriousness criterion."),
    ("sae_criteria", "not_serious"): _l("Seriousness criteria apply only to a serious event."),
    ("sae_criteria", "invalid"): _l("Choose criteria from the list."),
    ("relatedness", "invalid"): _l("Choose the relatedness to hetrombopag."),
    ("action", "invalid"): _l("Choose the action taken with the study drug."),
    ("outcome", "invalid"): _l("Choose the outcome."),
    ("reason", "required"): _l("Give a reason."),
    ("entry", "already_corrected"): _l("This entry was changed by someone else; open it again."),
    ("entry", "already_reported"): _l("This SAE was already marked as reported."),
    ("entry", "not_serious"): _l("Only a serious adverse event is reported this way."),
    ("reported_at", "invalid"): _l("The report time must be after the onset and not in the future."),
}


class MultiCheckbox(SelectMultipleField):
    widget = ListWidget(prefix_label=False)
    option_widget = CheckboxInput()


class AeForm(FlaskForm):
    term = SelectField(_l("Term (CTCAE v5.0)"))
    term_text = StringField(_l("Other term (free text)"), validators=[Optional(), Length(max=200)])
    grade = SelectField(_l("Grade (CTCAE v5.0)"), coerce=int, validate_choice=False)
    onset_date = DateField(_l("Onset date"), validators=[InputRequired(_l("Enter the onset date."))])
    end_date = DateField(_l("End date (empty: ongoing)"), validators=[Optional()])
    serious = BooleanField(_l("Serious adverse event (SAE)"))
    sae_criteria = MultiCheckbox(_l("Seriousness criteria"))
    relatedness = SelectField(_l("Relatedness to hetrombopag"))
    action = SelectField(_l("Action taken with the study drug"))
    outcome = SelectField(_l("Outcome"))
    description = TextAreaField(_l("Description (optional)"), validators=[Optional(), Length(max=1000)])
    reason = TextAreaField(_l("Reason for the change (required once recorded)"),
                           validators=[Optional(), Length(max=500)])


class ReportedForm(FlaskForm):
    reported_date = DateField(_l("Date reported to the sponsor"), validators=[InputRequired(_l("Enter a date."))])
    reported_time = StringField(_l("Time (HH:MM, local)"), validators=[InputRequired(_l("Enter a time."))])
    note = TextAreaField(_l("Note (how and to whom)"), validators=[Optional(), Length(max=500)])


def _form(formdata=None, **data) -> AeForm:
    rules = records_config().adverse_events
    lang = str(get_locale() or "zh")
    form = AeForm(formdata=formdata, **data) if formdata is not None else AeForm(formdata=None, **data)
    form.term.choices = options([("", "—")] + [
        (t.key, f"{records_vocab.CATEGORY[t.category]} · {t.label(lang)}") for t in rules.terms]
        + [(OTHER_TERM, _("Other (free text)"))])
    form.grade.choices = [(0, "—")] + [(g, str(g)) for g in rules.grades]
    form.sae_criteria.choices = options((c, records_vocab.SAE_CRITERION.get(c, c)) for c in rules.sae_criteria)
    for name, labels, values in (("relatedness", records_vocab.RELATEDNESS, rules.relatedness),
                                 ("action", records_vocab.ACTION, rules.actions),
                                 ("outcome", records_vocab.OUTCOME, rules.outcomes)):
        getattr(form, name).choices = options([("", "—")] + [(v, labels.get(v, v)) for v in values])
    return form


def _values(form: AeForm) -> service.AeValues:
    return service.AeValues(
        term=form.term.data or "", term_text=form.term_text.data, grade=form.grade.data or None,
        onset_date=form.onset_date.data, end_date=form.end_date.data, serious=bool(form.serious.data),
        sae_criteria=tuple(form.sae_criteria.data or ()), relatedness=form.relatedness.data or None,
        action=form.action.data or None, outcome=form.outcome.data or None, description=form.description.data)


def _refused(form: AeForm, exc) -> None:
    show_refusal(form, exc, ERRORS)


def ae_in_scope(ae_id: int) -> tuple[AdverseEvent, Participant]:
    ae = db.session().get(AdverseEvent, ae_id)
    if ae is None:
        abort(404)
    return ae, participant_in_scope(ae.participant_id)


@bp.route("/participants/<int:participant_id>/adverse-events/new", methods=["GET", "POST"])
@staff_required("nurse", "investigator")
def new_adverse_event(participant_id: int):
    p = participant_in_scope(participant_id)
    s = db.session()
    form = _form(request.form if request.method == "POST" else None)
    status = 200
    if request.method == "POST":
        status = 400
        if form.validate():
            try:
                ae = service.record(s, records_config(), participant=p, values=_values(form),
                                    staff_id=current_user.id, now=clock.now(), course_id=_running_course(p))
            except service.AdverseEventError as exc:
                _refused(form, exc)
            else:
                flash(_("Adverse event recorded."), "success")
                if ae.serious:
                    flash(_("SAE: the on-call phone is alerted and the reporting clock has started."), "error")
                return redirect(url_for("staff.adverse_events_of", participant_id=p.id))
    return render_template("staff/records/ae_form.html", p=p, form=form, ae=None,
                           action=url_for("staff.new_adverse_event", participant_id=p.id)), status


def _running_course(p: Participant) -> int | None:
    cfg, s = study_config(), db.session()
    from diary.services.dosing import course_for

    course = course_for(s, p, study.local_date(clock.now(), p.timezone), cfg)
    return course.id if course else None


@bp.route("/adverse-events/<int:ae_id>/edit", methods=["GET", "POST"])
@staff_required("nurse", "investigator")
def edit_adverse_event(ae_id: int):
    ae, p = ae_in_scope(ae_id)
    s = db.session()
    latest = service.current_of(s, ae)
    if latest.id != ae.id:
        return redirect(url_for("staff.edit_adverse_event", ae_id=latest.id))
    if request.method == "POST":
        form = _form(request.form)
    else:
        form = _form(None, obj=ae)
        form.grade.data = ae.grade or 0
    status = 200
    if request.method == "POST":
        status = 400
        if form.validate():
            try:
                saved = service.record(s, records_config(), participant=p, values=_values(form),
                                       staff_id=current_user.id, now=clock.now(), supersedes=ae,
                                       reason=form.reason.data)
            except service.AdverseEventError as exc:
                _refused(form, exc)
            else:
                flash(_("Adverse event saved."), "success")
                if saved.serious and service.reported(s, saved) is None:
                    flash(_("SAE: the on-call phone is alerted and the reporting clock has started."), "error")
                return redirect(url_for("staff.adverse_events_of", participant_id=p.id))
    return render_template("staff/records/ae_form.html", p=p, form=form, ae=ae,
                           action=url_for("staff.edit_adverse_event", ae_id=ae.id)), status


@bp.post("/symptoms/<int:report_id>/adverse-event")
@staff_required("nurse", "investigator")
def draft_ae_from_symptoms(report_id: int):
    s = db.session()
    report = s.get(SymptomReport, report_id)
    if report is None:
        abort(404)
    participant_in_scope(report.participant_id)
    ae = service.draft_from_symptoms(s, records_config(), report=report, staff_id=current_user.id, now=clock.now())
    return redirect(url_for("staff.edit_adverse_event", ae_id=ae.id))


@bp.post("/labs/<int:lab_id>/adverse-event")
@staff_required("nurse", "investigator")
def draft_ae_from_lab(lab_id: int):
    s = db.session()
    lab = s.get(LabResult, lab_id)
    if lab is None:
        abort(404)
    participant_in_scope(s.get(Course, lab.course_id).participant_id)
    ae = service.draft_from_lab(s, study_config(), records_config(), lab=lab, staff_id=current_user.id,
                                now=clock.now())
    return redirect(url_for("staff.edit_adverse_event", ae_id=ae.id))


@bp.get("/participants/<int:participant_id>/adverse-events")
@staff_required()
def adverse_events_of(participant_id: int):
    return _ae_page(participant_in_scope(participant_id))


def _ae_page(p: Participant, status: int = 200, reported_form: ReportedForm | None = None):
    s = db.session()
    rows = list(s.exec(select(AdverseEvent).where(AdverseEvent.participant_id == p.id)).all())
    events = service.current_events(rows)
    reports = {e.id: service.reported(s, e) for e in events}
    clocks = {c.ae.id: c for c in service.open_sae_clocks(s, records_config(), frozenset({p.site_id}), clock.now())}
    return render_template("staff/records/ae_list.html", p=p, events=events, history=rows, reports=reports,
                           clocks=clocks, lang=str(get_locale() or "zh"),
                           reported_form=reported_form or ReportedForm(formdata=None)), status


@bp.post("/adverse-events/<int:ae_id>/reported")
@staff_required("investigator")
def mark_sae_reported(ae_id: int):
    ae, p = ae_in_scope(ae_id)
    s = db.session()
    form = ReportedForm()
    if not form.validate():
        flash(_("Enter the date and time the SAE was reported."), "error")
        return _ae_page(p, 400, form)
    try:
        at = study.local_instant(form.reported_date.data, time.fromisoformat(form.reported_time.data.strip()),
                                 p.timezone)
    except ValueError:
        flash(_("Use HH:MM, e.g. 08:00."), "error")
        return _ae_page(p, 400, form)
    try:
        service.mark_reported(s, ae=ae, staff_id=current_user.id, reported_at=at, note=form.note.data,
                              now=clock.now())
    except service.AdverseEventError as exc:
        flash(str(ERRORS.get((exc.field, exc.code), _l("Please check this field."))), "error")
        return _ae_page(p, 400, form)
    flash(_("SAE marked as reported; the reporting clock has stopped."), "success")
    return redirect(url_for("staff.adverse_events_of", participant_id=p.id))


@dataclass(frozen=True)
class ParticipantRecords:
    events: list[AdverseEvent]
    clocks: dict[int, service.SaeClock]
    accounts: list


def participant_records(p: Participant) -> ParticipantRecords:
    """What the participant page shows of the audited records."""
    from diary.services import accountability

    s = db.session()
    events = service.current_events(list(s.exec(select(AdverseEvent).where(AdverseEvent.participant_id == p.id))))
    clocks = {c.ae.id: c for c in service.open_sae_clocks(s, records_config(), frozenset({p.site_id}), clock.now())
              if c.ae.participant_id == p.id}
    return ParticipantRecords(events, clocks,
                              accountability.participant_accounts(s, study_config(), records_config(), p))


def sae_clocks() -> list[service.SaeClock]:
    """The reporting clocks of the signed-in staff member's sites (the staff home page)."""
    return service.open_sae_clocks(db.session(), records_config(), current_user.site_ids, clock.now())
