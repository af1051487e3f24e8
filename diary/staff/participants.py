"""The participant list and page: courses, blood counts, decisions, timeline, chart, corrections, audit."""

from __future__ import annotations

import secrets
from datetime import datetime

from flask import abort, current_app, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_login import current_user
from sqlmodel import select

from diary import clock, course_record, db, study
from diary.auth import participant_in_scope, policy, staff_required
from diary.auth import services as auth
from diary.crypto import mask_phone
from diary.models import AuditEvent, Course, Participant, Site, StaffUser, SymptomReport
from diary.services import course_records, dosing, enrolment, review, symptoms
from diary.services import courses as course_service
from diary.staff import chart, timeline
from diary.staff.adverse_events import participant_records, sae_clocks
from diary.staff.common import bp, cipher, course_in_scope, study_config
from diary.staff.forms import CourseForm, DoseCorrectionForm, EndForm, LabForm, SymptomCorrectionForm, options

ENROLMENT_ERRORS = {
    ("study_number", "required"): _l("Enter a study number."),
    ("study_number", "taken"): _l("This study number is already used."),
    ("phone", "invalid"): _l("This is not a valid mobile number."),
    ("phone", "taken"): _l("This mobile number is already enrolled."),
    ("timezone", "unknown"): _l("Unknown time zone."),
    ("reminder_time", "invalid"): _l("Use HH:MM, e.g. 08:00."),
    ("reminder_time", "quiet_hours"): _l(
        "No reminders are sent in quiet hours (%(start)s–%(end)s): choose a time outside them."),
    ("adc_drug", "unknown"): _l("Choose a drug from the list."),
    ("start_date", "before_infusion"): _l("Day 1 must be after the infusion date."),
    ("start_date", "overlaps"): _l("This course would overlap the previous one."),
    ("screening", "not_eligible"): _l("Only an eligible screening can lead to enrolment."),
    ("screening", "already_enrolled"): _l("This screening has already led to an enrolment."),
    ("status", "already_ended"): _l("This participation has already ended."),
    ("reason", "required"): _l("Give a reason."),
}
DOSE_ERRORS = {
    "reason_required": _l("Give a reason."), "no_such_day": _l("No such course day."),
    "time_in_future": _l("The time is in the future."), "time_before_day": _l("The time is before that day."),
}


def enrolment_error(exc) -> str:
    message = str(ENROLMENT_ERRORS.get((exc.field, exc.code), _l("Please check: %(field)s", field=exc.field)))
    if (exc.field, exc.code) == ("reminder_time", "quiet_hours"):
        quiet = exc.details["quiet"]  # the site's window the time fell in
        message %= {"start": quiet.start.strftime("%H:%M"), "end": quiet.end.strftime("%H:%M")}
    return message


@bp.get("/")
@staff_required()
def home():
    query = select(Participant, Site).join(Site).order_by(Site.code, Participant.study_number)
    if current_user.site_ids is not None:
        query = query.where(Participant.site_id.in_(current_user.site_ids))
    q = (request.args.get("q") or "").strip().upper()
    if q:
        query = query.where(Participant.study_number.contains(q))
    rows = db.session().exec(query).all()
    return render_template("staff/home.html", rows=rows, q=q, sae_clocks=sae_clocks())


def _course_view(course: Course, participant: Participant, now: datetime) -> dict:
    from diary.services import decisions as decision_service
    from diary.services import labs as lab_service

    cfg, s = study_config(), db.session()
    lln = s.get(Site, participant.site_id).plt_lln  # the site laboratory's LLN, if it set one
    labs = lab_service.course_labs(s, course)
    signed = decision_service.course_decisions(s, course)
    record = course_records.load_record(s, course.id)
    plan = course_record.course_days(record, cfg, now)
    today = study.local_date(now, participant.timezone)
    today_day = study.course_day_on(course.start_date, today, cfg)
    decided = {d.lab_result_id for d in signed if d.lab_result_id}
    lab_form = LabForm(formdata=None, prefix=f"c{course.id}", course_day=_default_draw_day(today_day, cfg),
                       drawn_on=today)
    return {
        "course": course, "plan": plan, "labs": labs, "decisions": signed,
        # When the participant tapped "I understand" on each change (None: not yet).
        "acknowledged": {d.id: d.acknowledged_at for d in record.signed},
        "pause": review.open_pause_of(s, course.id) if record.open_pause else None,
        "today_day": today_day,
        "nadir": study.nadir((lab.plt for lab in labs if lab.course_day > 0), cfg, lln),
        "grades": {lab.id: study.platelet_grade(lab.plt, cfg, lln) for lab in labs},
        "awaiting": [lab for lab in labs if lab.id not in decided and lab.course_day > 0],
        "chart": chart.plt_chart(labs, signed, cfg, title=f"{participant.study_number} · C{course.cycle_number}"),
        "lab_form": lab_form,
    }


def _default_draw_day(today_day: int | None, cfg) -> int:
    if today_day is None:
        return cfg.draw_days[0]
    past = [d for d in cfg.draw_days if d <= today_day]
    return past[-1] if past and today_day - past[-1] <= 1 else today_day


@bp.get("/participants/<int:participant_id>")
@staff_required()
def participant(participant_id: int):
    p = participant_in_scope(participant_id)
    s, cfg, now = db.session(), study_config(), clock.now()
    courses = s.exec(select(Course).where(Course.participant_id == p.id).order_by(Course.cycle_number.desc())).all()
    course_form = CourseForm(formdata=None)
    course_form.adc_drug.choices = _drug_choices(cfg)
    correction = DoseCorrectionForm(formdata=None)
    correction.not_taken_reason.choices = _reason_choices(cfg)
    reports = symptoms.current_reports(list(s.exec(
        select(SymptomReport).where(SymptomReport.participant_id == p.id).order_by(SymptomReport.id.desc()))))
    return render_template(
        "staff/participant.html", p=p, site=s.get(Site, p.site_id),
        phone=mask_phone(cipher().decrypt(p.phone_enc)),
        courses=[_course_view(c, p, now) for c in courses], course_form=course_form,
        end_form=EndForm(formdata=None), correction=correction, reports=reports,
        events=timeline.participant_timeline(s, p), staff_names=_staff_names(),
        records=participant_records(p),
    )


def _drug_choices(cfg) -> list[tuple[str, str]]:
    from diary.staff.vocab import adc

    return options((code, adc(code)) for code in cfg.adc_drugs)


def _reason_choices(cfg) -> list[tuple[str, str]]:
    from diary.staff.vocab import NOT_TAKEN_REASON

    return options([("", "—")] + [(r, NOT_TAKEN_REASON.get(r, r)) for r in cfg.not_taken_reasons])


def _staff_names() -> dict[int, str]:
    return dict(db.session().exec(select(StaffUser.id, StaffUser.name)).all())


@bp.post("/participants/<int:participant_id>/activation")
@staff_required("nurse", "investigator", "admin")
def activation(participant_id: int):
    """A new one-time activation link, shown once as text and as a QR code."""
    p = participant_in_scope(participant_id)
    token = auth.issue_activation(db.session(), p, current_user.id, clock.now(), policy())
    link = activation_url(token)
    import segno  # imported where a QR code is drawn: ~3.7 MiB per worker otherwise (issue 15)

    qr_svg = segno.make(link, error="m").svg_inline(scale=6, title=p.study_number)
    return render_template(
        "staff/activation.html", p=p, link=link, qr_svg=qr_svg,
        hours=current_app.config["ACTIVATION_HOURS"],
    )


def activation_url(token: str) -> str:
    base = current_app.config["PUBLIC_BASE_URL"]
    path = url_for("auth.activate", token=token)
    return base + path if base else url_for("auth.activate", token=token, _external=True)


@bp.post("/participants/<int:participant_id>/courses")
@staff_required()
def open_course(participant_id: int):
    p = participant_in_scope(participant_id)
    form = CourseForm()
    form.adc_drug.choices = _drug_choices(study_config())
    if not form.validate():
        flash(_("Enter the drug and the infusion date."), "error")
        return redirect(url_for("staff.participant", participant_id=p.id))
    warnings = course_service.infusion_warnings(
        db.session(), study_config(), participant=p, infusion_date=form.infusion_date.data,
        today=study.local_date(clock.now(), p.timezone))
    if warnings and request.form.get("confirmed") != "1":
        # A second look, not a refusal: the form comes back with what is odd about the date.
        return render_template("staff/course_confirm.html", p=p, form=form, warnings=warnings,
                               cfg=study_config())
    try:
        course = enrolment.open_course(
            db.session(), study_config(), participant=p, adc_drug=form.adc_drug.data,
            infusion_date=form.infusion_date.data, start_date=form.start_date.data,
            staff_id=current_user.id, now=clock.now())
    except enrolment.EnrolmentError as exc:
        flash(enrolment_error(exc), "error")
        return redirect(url_for("staff.participant", participant_id=p.id))
    flash(_("Cycle %(n)d recorded: day 1 is %(date)s.", n=course.cycle_number,
            date=course.start_date.isoformat()), "success")
    return redirect(url_for("staff.participant", participant_id=p.id))


@bp.post("/participants/<int:participant_id>/end")
@staff_required()
def end_participation(participant_id: int):
    p = participant_in_scope(participant_id)
    form = EndForm()
    if not form.validate():
        flash(_("Choose withdrawn or completed and give a reason."), "error")
        return redirect(url_for("staff.participant", participant_id=p.id))
    try:
        enrolment.end_participation(db.session(), participant=p, status=form.status.data,
                                    reason=form.reason.data, staff_id=current_user.id, now=clock.now())
    except enrolment.EnrolmentError as exc:
        flash(enrolment_error(exc), "error")
        return redirect(url_for("staff.participant", participant_id=p.id))
    flash(_("Participation ended. Reminders have stopped."), "success")
    return redirect(url_for("staff.participant", participant_id=p.id))


@bp.post("/courses/<int:course_id>/doses")
@staff_required()
def correct_dose(course_id: int):
    """A staff record or correction of one day's dose, with a reason (supersedes, never edits)."""
    course, p = course_in_scope(course_id)
    cfg = study_config()
    form = DoseCorrectionForm()
    form.not_taken_reason.choices = _reason_choices(cfg)
    back = redirect(url_for("staff.participant", participant_id=p.id, _anchor=f"course-{course.id}"))
    if not form.validate():
        flash(_("Choose the day and what to record, and give a reason."), "error")
        return back
    taken_at = None
    if form.outcome.data == "taken":
        if form.taken_time.data is None:
            flash(_("Enter the time the dose was taken."), "error")
            return back
        try:
            on = study.date_of_day(course.start_date, form.course_day.data, cfg)
        except ValueError:
            flash(str(DOSE_ERRORS["no_such_day"]), "error")
            return back
        taken_at = study.local_instant(on, form.taken_time.data, p.timezone)
    try:
        dosing.log_dose(
            db.session(), cfg, participant=p, course_id=course.id, day=form.course_day.data, outcome=form.outcome.data,
            client_key=f"staff-{secrets.token_hex(12)}", source="staff", now=clock.now(), taken_at=taken_at,
            reason=form.not_taken_reason.data or None, staff_id=current_user.id,
            fasting=(form.fasting.data or None) if form.outcome.data == "taken" else None,
            correction_reason=form.reason.data)
    except dosing.DoseLogError as exc:
        flash(str(DOSE_ERRORS.get(exc.code, _l("Not recorded: %(code)s", code=exc.code))), "error")
        return back
    flash(_("Day %(day)d recorded.", day=form.course_day.data), "success")
    return back


@bp.route("/symptoms/<int:report_id>/correct", methods=["GET", "POST"])
@staff_required()
def correct_symptoms(report_id: int):
    s, cfg = db.session(), study_config()
    report = s.get(SymptomReport, report_id)
    if report is None:
        abort(404)
    p = participant_in_scope(report.participant_id)
    form = SymptomCorrectionForm()
    chosen = {item["key"]: item["severity"] for item in report.symptoms}
    status, error = 200, None
    if request.method == "POST":
        chosen = {sym.key: request.form.get(f"sym-{sym.key}") for sym in cfg.symptoms
                  if request.form.get(f"sym-{sym.key}") in (*symptoms.SEVERITIES, symptoms.NOT_STATED)}
        if form.validate():
            try:
                symptoms.correct_symptoms(
                    s, cfg, report=report, symptoms=[{"key": k, "severity": v} for k, v in chosen.items()],
                    reason=form.reason.data, staff_id=current_user.id, now=clock.now(),
                    client_key=f"staff-{secrets.token_hex(12)}")
            except symptoms.SymptomError as exc:
                error = {"already_corrected": _("This report was already corrected.")}.get(
                    exc.code, _("Not saved: %(code)s", code=exc.code))
                status = 400
            else:
                flash(_("Symptom report corrected."), "success")
                return redirect(url_for("staff.participant", participant_id=p.id, _anchor="symptoms"))
        else:
            status = 400
    return render_template("staff/symptom_correction.html", p=p, report=report, form=form, chosen=chosen,
                           error=error), status


@bp.get("/participants/<int:participant_id>/audit")
@staff_required()
def participant_audit(participant_id: int):
    p = participant_in_scope(participant_id)
    events = db.session().exec(select(AuditEvent).where(AuditEvent.participant_id == p.id)
                               .order_by(AuditEvent.id.desc())).all()
    return render_template("staff/audit.html", p=p, events=events, staff_names=_staff_names())


def staff_name(actor: str, names: dict[int, str]) -> str:
    kind, _sep, raw = actor.partition(":")
    if kind == "staff" and raw.isdigit():
        return names.get(int(raw), actor)
    return actor


bp.add_app_template_filter(staff_name, "staff_name")
