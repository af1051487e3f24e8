"""Enrolling participants and opening courses (one course per ADC cycle)."""

from __future__ import annotations

import zoneinfo
from datetime import date, datetime, timedelta

from sqlalchemy import update
from sqlmodel import Session, func, select

from diary import audit, study
from diary.crypto import DataCipher, normalize_phone
from diary.models import COHORTS, LANGUAGES, Course, Participant, Site, course_not_voided
from diary.services import FieldError
from diary.study import StudyConfig


class EnrolmentError(FieldError):
    """Enrolment or a course refused."""


def enroll(
    session: Session,
    cipher: DataCipher,
    *,
    site_id: int,
    study_number: str,
    cohort: str,
    phone: str,
    staff_id: int,
    now: datetime,
    language: str = "zh",
    timezone: str | None = None,
    reminder_time: str = "08:00",
    screening_id: int | None = None,
    cfg: StudyConfig | None = None,
) -> Participant:
    """Create a participant; validates every field and changes nothing when one is wrong."""
    site = session.get(Site, site_id)
    if site is None:
        raise EnrolmentError("site", "unknown")
    study_number = study_number.strip().upper()
    if not study_number or len(study_number) > 32:
        raise EnrolmentError("study_number", "required")
    if session.exec(select(Participant.id).where(Participant.study_number == study_number)).first():
        raise EnrolmentError("study_number", "taken")
    if cohort not in COHORTS:
        raise EnrolmentError("cohort", "unknown")
    if language not in LANGUAGES:
        raise EnrolmentError("language", "unknown")
    timezone = timezone or site.timezone
    try:
        zoneinfo.ZoneInfo(timezone)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        raise EnrolmentError("timezone", "unknown") from None
    # The participant's own rule (settings page), with their site's quiet hours. Every entry
    # point passes `cfg`; without it (fixtures that build past data) only the format is checked.
    quiet = study.quiet_window(cfg or StudyConfig(), site.quiet_start, site.quiet_end)
    refusal = study.reminder_time_refusal(reminder_time, quiet)
    if refusal == "invalid" or (refusal and cfg is not None):
        raise EnrolmentError("reminder_time", refusal, quiet=quiet)
    try:
        e164 = normalize_phone(phone)
    except ValueError:
        raise EnrolmentError("phone", "invalid") from None
    lookup = cipher.lookup_hash(e164)
    if session.exec(select(Participant.id).where(Participant.phone_hash.in_(cipher.lookup_hashes(e164)))).first():
        raise EnrolmentError("phone", "taken")

    participant = Participant(
        study_number=study_number, site_id=site_id, cohort=cohort, language=language,
        timezone=timezone, reminder_time=reminder_time, phone_enc=cipher.encrypt(e164),
        phone_hash=lookup, enrolled_by=staff_id, enrolled_at=now, screening_id=screening_id,
    )
    session.add(participant)
    session.flush()
    audit.record(
        session, actor=f"staff:{staff_id}", action="participant_enrolled", entity="Participant",
        entity_id=participant.id, site_id=site_id, participant_id=participant.id, at=now,
        # Never the phone number: the audit trail is read by monitors.
        after={"study_number": study_number, "cohort": cohort, "language": language,
               "timezone": timezone, "reminder_time": reminder_time},
    )
    return participant


def open_course(
    session: Session,
    cfg: StudyConfig,
    *,
    participant: Participant,
    adc_drug: str,
    infusion_date: date,
    staff_id: int,
    now: datetime,
    start_date: date | None = None,
) -> Course:
    """Record an ADC administration and open its 14-day course (day 1 defaults to the next day)."""
    if adc_drug not in cfg.adc_drugs:
        raise EnrolmentError("adc_drug", "unknown")
    # Regimens given on days 1 and 8 make "the day after chemotherapy" ambiguous, so staff may
    # set day 1 explicitly; it is never before the infusion (CLINICAL-NOTES, ADCs).
    start = start_date or infusion_date + timedelta(days=1)
    if start <= infusion_date:
        raise EnrolmentError("start_date", "before_infusion")
    previous = session.exec(
        select(Course).where(Course.participant_id == participant.id, course_not_voided())
        .order_by(Course.cycle_number.desc()).limit(1)
    ).first()
    if previous is not None:
        last_day = previous.start_date + timedelta(days=(previous.last_day or cfg.course_length_days) - 1)
        if start <= last_day:
            raise EnrolmentError("start_date", "overlaps")
    cycle = (session.exec(
        select(func.max(Course.cycle_number)).where(Course.participant_id == participant.id)
    ).one() or 0) + 1
    course = Course(
        participant_id=participant.id, cycle_number=cycle, adc_drug=adc_drug,
        infusion_date=infusion_date, start_date=start, starting_dose_mg=cfg.starting_dose_mg,
        created_by=staff_id, created_at=now,
    )
    session.add(course)
    session.flush()
    audit.record(
        session, actor=f"staff:{staff_id}", action="course_opened", entity="Course",
        entity_id=course.id, site_id=participant.site_id, participant_id=participant.id, at=now,
        after={"cycle_number": cycle, "adc_drug": adc_drug, "infusion_date": infusion_date,
               "start_date": start, "starting_dose_mg": cfg.starting_dose_mg},
    )
    return course


END_STATUSES = ("withdrawn", "completed")


def end_participation(
    session: Session,
    *,
    participant: Participant,
    status: str,
    reason: str,
    staff_id: int,
    now: datetime,
) -> Participant:
    """Withdraw or complete a participant with a reason. Reminders stop: the scheduler serves
    active participants only, and messages still queued for this person are dropped here."""
    from diary.models import Message

    if status not in END_STATUSES:
        raise EnrolmentError("status", "unknown")
    reason = (reason or "").strip()
    if not reason:
        raise EnrolmentError("reason", "required")
    before = {"status": "active"}
    # Once: a conditional UPDATE, so two staff ending the same participation at once cannot both.
    # Signing a participant out everywhere: the session loader refuses a non-active participant,
    # and the version bump ends remember-me cookies too.
    session.flush()
    done = session.connection().execute(
        update(Participant).where(Participant.id == participant.id, Participant.status == "active")
        .values(status=status, ended_at=now, ended_by=staff_id, end_reason=reason[:500],
                auth_version=Participant.auth_version + 1).returning(Participant.id)).first()
    session.refresh(participant)
    if done is None:
        raise EnrolmentError("status", "already_ended")
    queued = session.exec(select(Message).where(Message.participant_id == participant.id,
                                                 Message.status == "queued")).all()
    for message in queued:
        message.status = "dropped"
        message.last_error = f"participant {status}"
        session.add(message)
    session.flush()
    audit.record(session, actor=f"staff:{staff_id}", action=f"participant_{status}",
                 entity="Participant", entity_id=participant.id, site_id=participant.site_id,
                 participant_id=participant.id, at=now, reason=participant.end_reason,
                 before=before, after={"status": status, "dropped_messages": len(queued)})
    return participant
