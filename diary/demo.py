"""Demo data for development and the README's first command. Never run against real participants."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import time, timedelta

import pyotp
from flask import Flask
from sqlmodel import Session, select

from diary import audit, course_record, db, study
from diary.auth.services import Policy, activate, hash_secret, issue_activation
from diary.models import Course, Site, StaffSite, StaffUser
from diary.services import decisions, dosing, enrolment, labs, symptoms
from diary.services.course_records import load_record
from diary.services.flags import raise_flag
from diary.sqltypes import utc_now

PASSWORD = "demo-password-2026"  # noqa: S105 - demo accounts only
# A fixed TOTP secret so a developer can add the demo nurse to an authenticator app once.
NURSE_TOTP = "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP"
DEMO_PIN = "2468"


def policy_from(config: Mapping) -> Policy:
    return Policy(max_failures=config["LOGIN_MAX_FAILURES"], lock_minutes=config["LOGIN_LOCK_MINUTES"],
                  activation_hours=config["ACTIVATION_HOURS"],
                  pin_reset_minutes=config["PIN_RESET_MINUTES"])


def activation_link(token: str) -> str:
    from flask import current_app

    base = current_app.config["PUBLIC_BASE_URL"] or "http://127.0.0.1:5000"
    return f"{base}/activate/{token}"


# study number, site, cohort, language, phone, course day today (None: starts in 2 days)
PARTICIPANTS = [
    ("DEMO-001", "DEMO", "primary", "zh", "+8613800000001", 6),
    ("DEMO-002", "DEMO", "secondary", "en", "+8613800000002", 10),
    ("DEMO-003", "DEMO", "primary", "zh", "+8613800000003", 14),
    ("DEMO-004", "DEMO", "secondary", "zh", "+8613800000004", None),
    ("DEMO-005", "DEMO", "primary", "en", "+8613800000005", 1),
    ("DEMO-006", "DEMO", "secondary", "zh", "+8613800000006", 3),
    ("SITE2-001", "DEMO2", "primary", "zh", "+8613800000101", 4),
]


def seed(app: Flask, echo: Callable[[str], None] = print) -> None:
    cfg = app.extensions["diary.study"]
    cipher = app.extensions["diary.cipher"]
    pol = policy_from(app.config)
    now = utc_now()
    with Session(db.engine()) as s:
        if s.exec(select(Site).where(Site.code == "DEMO")).first() is None:
            _seed(s, cfg, cipher, now)
            s.commit()
            echo("Demo data created.")
        else:
            echo("Demo data already present; new activation links below.")
        _print_sign_ins(s, cipher, pol, now, app, echo)


def _seed(s: Session, cfg, cipher, now) -> None:
    sites = {}
    for code, name in (("DEMO", "Demo Cancer Hospital"), ("DEMO2", "Second Demo Hospital")):
        site = Site(code=code, name=name, timezone="Asia/Shanghai", phone="+86-591-0000-0000",
                    on_call_phone="+8613900000000")
        s.add(site)
        s.flush()
        sites[code] = site
        audit.record(s, actor="demo", action="site_created", entity="Site", entity_id=site.id,
                     site_id=site.id, at=now)
    staff = {}
    for email, name, role, site_codes in (
        ("nurse@demo.test", "Nurse Lin", "nurse", ["DEMO"]),
        ("investigator@demo.test", "Dr Chen", "investigator", ["DEMO"]),
        ("admin@demo.test", "Data Manager Wu", "admin", []),
        ("nurse2@demo.test", "Nurse Zhao", "nurse", ["DEMO2"]),
    ):
        user = StaffUser(email=email, name=name, role=role, password_hash=hash_secret(PASSWORD))
        if email == "nurse@demo.test":
            user.totp_secret_enc = cipher.encrypt(NURSE_TOTP).decode()
        s.add(user)
        s.flush()
        staff[email] = user
        for code in site_codes:
            s.add(StaffSite(staff_id=user.id, site_id=sites[code].id))
        audit.record(s, actor="demo", action="staff_created", entity="StaffUser",
                     entity_id=user.id, at=now, after={"email": email, "role": role})
    nurse, investigator = staff["nurse@demo.test"], staff["investigator@demo.test"]

    for number, site_code, cohort, language, phone, day_today in PARTICIPANTS:
        site = sites[site_code]
        p = enrolment.enroll(s, cipher, site_id=site.id, study_number=number, cohort=cohort,
                             phone=phone, staff_id=nurse.id, now=now, language=language)
        today = study.local_date(now, p.timezone)
        if day_today is None:
            enrolment.open_course(s, cfg, participant=p, adc_drug="trastuzumab_emtansine",
                                  infusion_date=today - timedelta(days=31), staff_id=nurse.id, now=now)
            start = today + timedelta(days=2)
        else:
            start = today - timedelta(days=day_today - 1)
        course = enrolment.open_course(
            s, cfg, participant=p, adc_drug="trastuzumab_deruxtecan",
            infusion_date=start - timedelta(days=1), start_date=start, staff_id=nurse.id, now=now)
        if day_today is None:
            continue
        _past_doses(s, cfg, p, course, day_today, now)
        _labs_and_decisions(s, cfg, p, course, day_today, investigator, nurse, now)
    p6 = _participant(s, "DEMO-006")
    symptoms.report_symptoms(
        s, cfg, participant=p6, course_id=_course(s, p6).id,
        symptoms=[{"key": "black_or_bloody_stool", "severity": "moderate"}, {"key": "bruising", "severity": "mild"}],
        noticed_at=now - timedelta(hours=3), client_key="demo-symptom-006", source="participant", now=now)
    p1 = _participant(s, "DEMO-001")
    symptoms.report_symptoms(
        s, cfg, participant=p1, course_id=_course(s, p1).id,
        symptoms=[{"key": "gum_bleeding", "severity": "mild"}],
        noticed_at=now - timedelta(days=1), client_key="demo-symptom-001", source="participant", now=now)


def _participant(s: Session, number: str):
    from diary.models import Participant

    return s.exec(select(Participant).where(Participant.study_number == number)).one()


def _course(s: Session, p) -> Course:
    return s.exec(select(Course).where(Course.participant_id == p.id).order_by(Course.id.desc())).first()


def _past_doses(s, cfg, p, course, day_today, now) -> None:
    for day in range(1, day_today):
        key = f"demo-dose-{p.study_number}-{day}"
        taken_at = study.local_instant(course.start_date + timedelta(days=day - 1),
                                       time(7, 30), p.timezone)
        if p.study_number == "DEMO-002" and day == day_today - 2:
            raise_flag(s, key=f"missed:{course.id}:{day}", kind="missed_dose", site_id=p.site_id,
                       participant_id=p.id, now=now, detail=f"Day {day}: no dose recorded by the cutoff")
            continue
        if day == 3 and p.study_number == "DEMO-001":
            dosing.log_dose(s, cfg, participant=p, course_id=course.id, day=day, outcome="not_taken",
                            reason="vomited", client_key=key, source="staff", now=now, staff_id=p.enrolled_by,
                            correction_reason="demo: entered from the paper diary")
            continue
        if course_record.doses(load_record(s, course.id), cfg)[day - 1] == 0:
            continue
        dosing.log_dose(s, cfg, participant=p, course_id=course.id, day=day, outcome="taken",
                        taken_at=taken_at, fasting="yes", client_key=key, source="staff", now=now,
                        staff_id=p.enrolled_by, correction_reason="demo: entered from the paper diary")


def _labs_and_decisions(s, cfg, p, course, day_today, investigator, nurse, now) -> None:
    values = {"DEMO-002": {7: 62.0}, "DEMO-003": {7: 108.0, 10: 131.0}, "SITE2-001": {}}
    for day, plt in values.get(p.study_number, {}).items():
        if day > day_today:
            continue
        lab = labs.record_lab(s, cfg, course=course, course_day=day, drawn_on=course.start_date
                              + timedelta(days=day - 1), plt=plt, hb=112.0, anc=2.1,
                              staff_id=nurse.id, now=now)
        if p.study_number == "DEMO-003" and day == 7:
            # Signed on the evening of the draw, as it would have been: a change never reaches back.
            signed_at = min(now, study.local_instant(course.start_date + timedelta(days=day - 1), time(18, 0),
                                                     p.timezone))
            decisions.sign_decision(s, cfg, course=course, signer=investigator, effective_day=8,
                                    dose_mg=0.0, current_dose_mg=course.starting_dose_mg, lab=lab,
                                    now=signed_at)


def _print_sign_ins(s: Session, cipher, pol: Policy, now, app: Flask, echo) -> None:
    from diary.models import Participant

    echo("\nStaff sign-in: http://127.0.0.1:5000/staff/login")
    echo(f"  password for every demo account: {PASSWORD}")
    echo(f"  nurse@demo.test         nurse, site DEMO; TOTP secret {NURSE_TOTP} "
         f"(code now: {pyotp.TOTP(NURSE_TOTP).now()})")
    echo("  investigator@demo.test  investigator, site DEMO; sets up TOTP at first sign-in")
    echo("  admin@demo.test         admin, all sites; sets up TOTP at first sign-in")
    echo("  nurse2@demo.test        nurse, site DEMO2 only")
    echo("\nParticipants (open a link on a phone to choose a PIN; later sign in with phone + PIN):")
    nurse = s.exec(select(StaffUser).where(StaffUser.email == "nurse@demo.test")).one()
    for p in s.exec(select(Participant).order_by(Participant.study_number)).all():
        token = issue_activation(s, p, nurse.id, now, pol)
        phone = cipher.decrypt(p.phone_enc)
        if p.study_number == "DEMO-002":
            activate(s, token, DEMO_PIN, now)
            echo(f"  {p.study_number:10} {phone}  PIN {DEMO_PIN} (already activated)")
        else:
            echo(f"  {p.study_number:10} {phone}  {activation_link(token)}")
    s.commit()
