"""Screening (the configured checklist, signed with the password) and enrolment from an eligible one."""

from __future__ import annotations

from flask import abort, current_app, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_login import current_user
from sqlmodel import select

from diary import clock, db, eligibility
from diary.auth import policy, staff_required
from diary.auth import services as auth
from diary.eligibility import Measures
from diary.models import Participant, Screening, Site, StaffUser
from diary.services import screening as screening_service
from diary.services.enrolment import EnrolmentError
from diary.staff.common import bp, checklist, cipher, my_sites, screening_in_scope
from diary.staff.forms import EnrolForm, ScreeningForm, options
from diary.staff.participants import activation_url, enrolment_error

MEASURE_FIELDS = ("age_years", "sex", "weight_kg", "creatinine", "creatinine_unit", "creatinine_uln",
                  "bilirubin", "bilirubin_uln", "alt", "alt_uln", "ast", "ast_uln", "inr", "inr_uln", "aptt",
                  "aptt_uln", "ecog", "plt", "liver_metastasis", "adc_planned", "previous_nadir_plt",
                  "same_regimen_two_cycles")
YES_NO_FIELDS = ("liver_metastasis", "adc_planned", "same_regimen_two_cycles")
MEASURE_ERRORS = {
    "out_of_range": _l("This value is outside the plausible range."),
    "whole_number": _l("Enter a whole number."),
    "unknown": _l("Choose a value from the list."),
    "out_of_range_for_unit": _l("This value is not plausible in the unit chosen (µmol/L: 20–1500; mg/dL: 0.2–15). "
                                "Check the unit."),
    "implausible_clearance": _l("This creatinine gives a creatinine clearance above any a kidney can reach. "
                                "Check the value and its unit."),
}


def _yes_no(value: str | None) -> bool | None:
    return {"yes": True, "no": False}.get(value or "")


def _measures(form: ScreeningForm) -> Measures:
    values = {}
    for name in MEASURE_FIELDS:
        raw = getattr(form, name).data
        values[name] = _yes_no(raw) if name in YES_NO_FIELDS else (raw if raw != "" else None)
    return Measures(**values)


def _answers() -> dict[str, bool | None]:
    return {c.key: _yes_no(request.form.get(f"answer-{c.key}")) for c in checklist().answered}


@bp.get("/screenings")
@staff_required()
def screenings():
    query = select(Screening, Site).join(Site).order_by(Screening.id.desc())
    if current_user.site_ids is not None:
        query = query.where(Screening.site_id.in_(sorted(current_user.site_ids)))
    rows = db.session().exec(query).all()
    ids = [sc.id for sc, _site in rows]
    enrolled = dict(db.session().exec(select(Participant.screening_id, Participant.id)
                                      .where(Participant.screening_id.in_(ids))).all()) if ids else {}
    return render_template("staff/screenings.html", rows=rows, enrolled=enrolled)


@bp.route("/screenings/new", methods=["GET", "POST"])
@staff_required()
def new_screening():
    form = ScreeningForm()
    form.site_id.choices = options((site.id, f"{site.code} · {site.name}") for site in my_sites())
    answers: dict[str, bool | None] = {}
    status = 200
    if request.method == "POST":
        answers = _answers()
        status = 400
        checking = "check" in request.form
        if checking:
            # "Check the values" shows the converted creatinine, the CrCl and the outcome; nothing is signed.
            form.password.validators = []
        if form.validate():
            measures = _measures(form)
            errors = measures.errors() or measures.clearance_error(checklist().thresholds)
            for name, code in errors.items():
                getattr(form, name).errors = [str(MEASURE_ERRORS[code])]
            if not current_user.can_see_site(form.site_id.data):
                abort(403)
            if not errors and checking:
                outcome = eligibility.evaluate(checklist(), form.cohort.data, measures, answers)
                return _render_form(form, answers, preview=(measures, outcome)), 200
            if not errors:
                s, now = db.session(), clock.now()
                staff = s.get(StaffUser, current_user.id)
                try:
                    auth.reauthenticate(s, staff, form.password.data, now, policy())
                except auth.SignInError:
                    db.commit_now()  # the wrong password's count and lock stay, though nothing is signed
                    form.password.errors = [_("The password is not correct; the screening was not signed.")]
                    return _render_form(form, answers), 401
                try:
                    screening = screening_service.sign_screening(
                        s, checklist(), site_id=form.site_id.data, screening_number=form.screening_number.data,
                        cohort=form.cohort.data, screened_on=form.screened_on.data, measures=measures,
                        answers=answers, signer=staff, now=now)
                except screening_service.ScreeningError as exc:
                    getattr(form, exc.field, form.screening_number).errors = [
                        _("The screening date cannot be in the future.") if exc.code == "future"
                        else _("Please check this field.")]
                else:
                    flash(_("Screening signed."), "success")
                    return redirect(url_for("staff.screening", screening_id=screening.id))
    return _render_form(form, answers), status


def _render_form(form: ScreeningForm, answers: dict, preview=None):
    return render_template("staff/screening_form.html", form=form, answers=answers, checklist=checklist(),
                           preview=preview)


@bp.get("/screenings/<int:screening_id>")
@staff_required()
def screening(screening_id: int):
    sc = screening_in_scope(screening_id)
    s = db.session()
    return render_template(
        "staff/screening.html", sc=sc, site=s.get(Site, sc.site_id), signer=s.get(StaffUser, sc.signed_by),
        criteria={c.key: c for c in checklist().criteria},
        participant=screening_service.enrolled_from(s, sc), enrol_form=EnrolForm(formdata=None))


@bp.post("/screenings/<int:screening_id>/enrol")
@staff_required()
def enrol(screening_id: int):
    sc = screening_in_scope(screening_id)
    s = db.session()
    form = EnrolForm()
    status = 400
    if form.validate():
        try:
            p = screening_service.enroll_from_screening(
                s, cipher(), screening=sc, study_number=form.study_number.data, phone=form.phone.data,
                staff_id=current_user.id, now=clock.now(), language=form.language.data,
                timezone=form.timezone.data or None, reminder_time=form.reminder_time.data,
                cfg=current_app.extensions["diary.study"])
        except EnrolmentError as exc:
            target = getattr(form, exc.field, None)
            message = enrolment_error(exc)
            if target is not None:
                target.errors = [message]
            else:
                flash(message, "error")
        else:
            # One transaction with the enrolment: a participant is never left without a link.
            token = auth.issue_activation(s, p, current_user.id, clock.now(), policy())
            link = activation_url(token)
            import segno  # imported where a QR code is drawn: ~3.7 MiB per worker otherwise (issue 15)

            flash(_("%(n)s enrolled. Give the participant this activation link.", n=p.study_number), "success")
            return render_template(
                "staff/activation.html", p=p, link=link,
                qr_svg=segno.make(link, error="m").svg_inline(scale=6, title=p.study_number),
                hours=current_app.config["ACTIVATION_HOURS"])
    return render_template(
        "staff/screening.html", sc=sc, site=s.get(Site, sc.site_id), signer=s.get(StaffUser, sc.signed_by),
        criteria={c.key: c for c in checklist().criteria},
        participant=screening_service.enrolled_from(s, sc), enrol_form=form), status
