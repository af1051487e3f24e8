"""Drug accountability: dispensing (with lot warnings), returns, corrections, and the site's log."""

from __future__ import annotations

import csv
import io

from flask import Response, abort, current_app, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_babel import ngettext
from flask_login import current_user
from flask_wtf import FlaskForm
from sqlmodel import select
from wtforms import BooleanField, DateField, FloatField, IntegerField, StringField, TextAreaField
from wtforms.validators import InputRequired, Length, NumberRange, Optional

from diary import audit, clock, db
from diary.auth import participant_in_scope, staff_required
from diary.models import DrugAccountability, StaffUser
from diary.records import RecordsConfig
from diary.services import accountability as service
from diary.staff import records_vocab
from diary.staff.common import bp, course_in_scope, show_refusal, study_config
from diary.staff.forms import REASON

ERRORS = {
    ("tablets", "invalid"): _l("Enter a number of tablets between 0 and 10000."),
    ("bottles", "invalid"): _l("Enter a number of bottles between 0 and 100."),
    ("on_date", "required"): _l("Enter a date."),
    ("on_date", "in_future"): _l("The date cannot be in the future."),
    ("strength_mg", "invalid"): _l("Enter the tablet strength in mg."),
    ("lot_number", "required"): _l("Enter the lot number."),
    ("expiry", "required"): _l("Enter the expiry date."),
    ("reason", "required"): _l("Give a reason."),
    ("entry", "already_corrected"): _l("This entry was already corrected."),
}


def records_config() -> RecordsConfig:
    return current_app.extensions["diary.records"]


@bp.context_processor
def _records_globals() -> dict:
    return {"records_vocab": records_vocab, "rcfg": records_config()}


def staff_names() -> dict[int, str]:
    return dict(db.session().exec(select(StaffUser.id, StaffUser.name)).all())


class ReturnForm(FlaskForm):
    on_date = DateField(_l("Date returned"), validators=[InputRequired(_l("Enter a date."))])
    tablets = IntegerField(_l("Tablets returned"), validators=[InputRequired(_l("Enter a number.")),
                                                                NumberRange(min=0, max=10000)])


class DispenseForm(FlaskForm):
    on_date = DateField(_l("Date dispensed"), validators=[InputRequired(_l("Enter a date."))])
    tablets = IntegerField(_l("Tablets dispensed"), validators=[InputRequired(_l("Enter a number.")),
                                                                 NumberRange(min=0, max=10000)])
    bottles = IntegerField(_l("Bottles (optional)"), validators=[Optional(), NumberRange(min=0, max=100)])
    strength_mg = FloatField(_l("Tablet strength (mg)"), validators=[InputRequired(_l("Enter a number."))])
    lot_number = StringField(_l("Lot number"), validators=[InputRequired(_l("Enter the lot number.")),
                                                           Length(max=64)])
    expiry = DateField(_l("Expiry date"), validators=[InputRequired(_l("Enter a date."))])
    accept_warnings = BooleanField(_l("I have checked the warnings above and dispense this lot anyway"))


class DispenseCorrectionForm(DispenseForm):
    reason = TextAreaField(_l("Reason for the correction"), validators=REASON)


class ReturnCorrectionForm(ReturnForm):
    reason = TextAreaField(_l("Reason for the correction"), validators=REASON)


def _save(form, *, course, p, kind, supersedes=None):
    """Validate and record; returns (saved row or None, warnings, http status)."""
    s = db.session()
    if not form.validate():
        return None, [], 400
    extra = {}
    if kind == "dispensed":
        extra = {"bottles": form.bottles.data, "strength_mg": form.strength_mg.data,
                 "lot_number": form.lot_number.data, "expiry": form.expiry.data,
                 "accept_warnings": form.accept_warnings.data}
    try:
        row, warnings = service.record(
            s, study_config(), records_config(), course=course, participant=p, kind=kind,
            on_date=form.on_date.data, tablets=form.tablets.data, staff_id=current_user.id, now=clock.now(),
            supersedes=supersedes, reason=getattr(form, "reason", None) and form.reason.data, **extra)
    except service.AccountabilityError as exc:
        show_refusal(form, exc, ERRORS)
        return None, [], 400
    if row is None:
        return None, warnings, 200
    return row, warnings, 200


@bp.route("/courses/<int:course_id>/dispensing", methods=["GET", "POST"])
@staff_required("nurse", "investigator")
def dispense(course_id: int):
    course, p = course_in_scope(course_id)
    form = DispenseForm() if request.method == "POST" else DispenseForm(
        formdata=None, strength_mg=study_config().tablet_strength_mg)
    status, warnings = 200, []
    if request.method == "POST":
        row, warnings, status = _save(form, course=course, p=p, kind="dispensed")
        if row is not None:
            flash(ngettext("%(num)d tablet dispensed for cycle %(c)d.", "%(num)d tablets dispensed for cycle %(c)d.",
                           row.tablets, c=course.cycle_number), "success")
            return redirect(url_for("staff.participant_accountability", participant_id=p.id))
    return render_template("staff/records/dispense.html", p=p, course=course, form=form, warnings=warnings,
                           action=url_for("staff.dispense", course_id=course.id)), status


@bp.route("/courses/<int:course_id>/returns", methods=["GET", "POST"])
@staff_required("nurse", "investigator")
def drug_return(course_id: int):
    course, p = course_in_scope(course_id)
    form = ReturnForm() if request.method == "POST" else ReturnForm(formdata=None)
    status = 200
    if request.method == "POST":
        row, _w, status = _save(form, course=course, p=p, kind="returned")
        if row is not None:
            account = service.course_account(db.session(), study_config(), records_config(), course)
            flash(ngettext("%(num)d tablet returned for cycle %(c)d.", "%(num)d tablets returned for cycle %(c)d.",
                           row.tablets, c=course.cycle_number), "success")
            if account.reconciliation.discrepant:
                flash(_("%(n)+d tablets are unaccounted for: a flag was raised.",
                        n=account.reconciliation.unaccounted), "error")
            return redirect(url_for("staff.participant_accountability", participant_id=p.id))
    return render_template("staff/records/return.html", p=p, course=course, form=form,
                           action=url_for("staff.drug_return", course_id=course.id)), status


@bp.route("/accountability/<int:entry_id>/correct", methods=["GET", "POST"])
@staff_required("nurse", "investigator")
def correct_accountability(entry_id: int):
    entry = db.session().get(DrugAccountability, entry_id)
    if entry is None:
        abort(404)
    course, p = course_in_scope(entry.course_id)
    form_class = DispenseCorrectionForm if entry.kind == "dispensed" else ReturnCorrectionForm
    form = form_class() if request.method == "POST" else form_class(formdata=None, obj=entry)
    status, warnings = 200, []
    if request.method == "POST":
        row, warnings, status = _save(form, course=course, p=p, kind=entry.kind, supersedes=entry)
        if row is not None:
            flash(_("Entry corrected."), "success")
            return redirect(url_for("staff.participant_accountability", participant_id=p.id))
    template = "staff/records/dispense.html" if entry.kind == "dispensed" else "staff/records/return.html"
    return render_template(template, p=p, course=course, form=form, warnings=warnings, entry=entry,
                           action=url_for("staff.correct_accountability", entry_id=entry.id)), status


@bp.get("/participants/<int:participant_id>/accountability")
@staff_required()
def participant_accountability(participant_id: int):
    p = participant_in_scope(participant_id)
    s = db.session()
    accounts = service.participant_accounts(s, study_config(), records_config(), p)
    rows = s.exec(service.history_query(p.id)).all()
    return render_template("staff/records/participant_accountability.html", p=p, accounts=accounts, history=rows,
                           staff_names=staff_names())


COLUMNS = ("study_number", "cycle", "kind", "on_date", "tablets", "bottles", "strength_mg", "lot_number",
           "expiry", "warnings", "staff_id", "entered_at", "supersedes_id", "correction_reason")


@bp.get("/accountability")
@staff_required()
def accountability_log():
    """The site's accountability log (current entries); ?format=csv downloads it for the monitor."""
    s = db.session()
    rows = service.site_log(s, current_user.site_ids)
    if request.args.get("format") != "csv":
        return render_template("staff/records/accountability_log.html", rows=rows)
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(COLUMNS)
    for row, number, cycle in rows:
        writer.writerow([number, cycle, row.kind, row.on_date.isoformat(), row.tablets, row.bottles or "",
                         "" if row.strength_mg is None else f"{row.strength_mg:g}", row.lot_number or "",
                         row.expiry.isoformat() if row.expiry else "", ";".join(row.warnings),
                         row.staff_id, row.entered_at.isoformat(), row.supersedes_id or "",
                         row.correction_reason or ""])
    now = clock.now()
    audit.record(s, actor=f"staff:{current_user.id}", action="accountability_log_exported", entity="Export",
                 at=now, after={"sites": "all" if current_user.site_ids is None else sorted(current_user.site_ids),
                                "rows": len(rows)})
    return Response(out.getvalue(), mimetype="text/csv", headers={
        "Content-Disposition": f'attachment; filename="accountability-{now:%Y%m%d}.csv"',
        "Cache-Control": "no-store"})
