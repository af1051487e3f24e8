"""Screening: the checklist outcome, signed and audit-trailed; enrolment only from an eligible one."""

from __future__ import annotations

from datetime import date, datetime

from sqlmodel import Session, select

from diary import audit, eligibility, study
from diary.crypto import DataCipher
from diary.eligibility import Checklist, Measures
from diary.models import COHORTS, Participant, Screening, Site, StaffUser
from diary.services import FieldError
from diary.services.enrolment import EnrolmentError, enroll
from diary.study import StudyConfig


class ScreeningError(FieldError):
    """A screening refused."""


def sign_screening(
    session: Session,
    checklist: Checklist,
    *,
    site_id: int,
    screening_number: str,
    cohort: str,
    screened_on: date,
    measures: Measures,
    answers: dict[str, bool | None],
    signer: StaffUser,
    now: datetime,
) -> Screening:
    """Evaluate the checklist and store the outcome under the signer's name (re-authenticated by the caller)."""
    number = screening_number.strip().upper()
    if not number or len(number) > 32:
        raise ScreeningError("screening_number", "required")
    if cohort not in COHORTS:
        raise ScreeningError("cohort", "unknown")
    site = session.get(Site, site_id)
    if site is None:
        raise ScreeningError("site", "unknown")
    if screened_on > study.local_date(now, site.timezone):
        raise ScreeningError("screened_on", "future")
    outcome = eligibility.evaluate(checklist, cohort, measures, answers)
    known = {c.key for c in checklist.answered}
    record = {
        "measures": measures.as_dict(),
        "answers": {k: v for k, v in answers.items() if k in known},
        "ccr_ml_min": None if outcome.ccr is None else round(outcome.ccr, 1),
        # As shown before signing: the unit is where enrolment errors have come from.
        "creatinine_mg_dl": None if (cr := measures.creatinine_in_mg_dl()) is None else round(cr, 3),
        "results": [{"key": r.criterion.key, "label": r.criterion.label, "ok": r.ok, "detail": r.detail,
                     "missing": list(r.missing)} for r in outcome.results],
    }
    screening = Screening(
        site_id=site_id, screening_number=number, cohort=cohort, screened_on=screened_on,
        answers=record, eligible=outcome.eligible, failed_criteria=list(outcome.failed),
        signed_by=signer.id, signed_at=now,
    )
    session.add(screening)
    session.flush()
    audit.record(session, actor=f"staff:{signer.id}", action="screening_signed", entity="Screening",
                 entity_id=screening.id, site_id=site_id, at=now,
                 after={"screening_number": number, "cohort": cohort, "screened_on": screened_on,
                        "eligible": outcome.eligible, "failed_criteria": list(outcome.failed),
                        "ccr_ml_min": record["ccr_ml_min"]})
    return screening


def enrolled_from(session: Session, screening: Screening) -> Participant | None:
    return session.exec(select(Participant).where(Participant.screening_id == screening.id)).first()


def enroll_from_screening(
    session: Session,
    cipher: DataCipher,
    *,
    screening: Screening,
    study_number: str,
    phone: str,
    staff_id: int,
    now: datetime,
    language: str = "zh",
    timezone: str | None = None,
    reminder_time: str = "08:00",
    cfg: StudyConfig | None = None,
) -> Participant:
    """Enrol the screened person: only from an eligible, signed screening, and only once."""
    if not screening.eligible:
        raise EnrolmentError("screening", "not_eligible")
    if enrolled_from(session, screening) is not None:
        raise EnrolmentError("screening", "already_enrolled")
    return enroll(session, cipher, site_id=screening.site_id, study_number=study_number,
                  cohort=screening.cohort, phone=phone, staff_id=staff_id, now=now,
                  language=language, timezone=timezone, reminder_time=reminder_time,
                  screening_id=screening.id, cfg=cfg)
