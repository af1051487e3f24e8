"""Symptom reports: recorded from the page, offline sync or staff; danger answers flag at once."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, select

from diary import audit, course_record, study
from diary.models import Participant, SymptomReport
from diary.services import review
from diary.services.flag_details import detail
from diary.services.flags import raise_flag
from diary.study import StudyConfig

SEVERITIES = ("mild", "moderate", "severe")
# Recorded when a report with a danger answer leaves "how bad" blank: a danger answer is never
# refused for a missing detail (issue 10, finding 1).
NOT_STATED = "not_stated"


class SymptomError(ValueError):
    def __init__(self, code: str):
        super().__init__(code)
        self.code = code


def _danger_answers(symptoms: list[dict], cfg: StudyConfig) -> tuple[list, list[dict]]:
    """The danger symptoms among the answers, and the answers to store.

    Refuses unknown symptoms, and a missing severity only when nothing ticked is a danger sign: a
    report with a danger answer is stored at once, any blank severity recorded as "not stated"."""
    try:
        danger = study.danger_symptoms([s.get("key") for s in symptoms], cfg)
    except ValueError:
        raise SymptomError("unknown_symptom") from None
    stated = [s.get("severity") in SEVERITIES for s in symptoms]
    if not danger and not all(stated):
        raise SymptomError("severity_required")
    answers = [{"key": s["key"], "severity": s["severity"] if ok else NOT_STATED}
               for s, ok in zip(symptoms, stated, strict=True)]
    return danger, answers


def report_symptoms(
    session: Session,
    cfg: StudyConfig,
    *,
    participant: Participant,
    symptoms: list[dict],
    noticed_at: datetime,
    client_key: str,
    source: str,
    now: datetime,
    course_id: int | None = None,
    note: str | None = None,
    staff_id: int | None = None,
) -> SymptomReport:
    """Record a report; a replayed client_key returns the first. A danger answer raises a flag
    in the same transaction, so staff see it even if the participant's phone goes offline."""
    existing = session.exec(select(SymptomReport).where(SymptomReport.client_key == client_key)).first()
    if existing is not None:
        return _replayed(existing, participant)
    if not symptoms:
        raise SymptomError("nothing_chosen")
    danger, answers = _danger_answers(symptoms, cfg)
    report = SymptomReport(
        participant_id=participant.id, course_id=course_id, noticed_at=noticed_at,
        symptoms=answers,
        danger=bool(danger), note=(note or "").strip()[:1000] or None, source=source,
        staff_id=staff_id, received_at=now, client_key=client_key,
    )
    try:
        with session.begin_nested():
            session.add(report)
    except IntegrityError:
        # The same key, written a moment ago by a concurrent replay: answer with that report.
        session.expire_all()
        raced = session.exec(select(SymptomReport).where(SymptomReport.client_key == client_key)).first()
        if raced is None:
            raise
        return _replayed(raced, participant)
    audit.record(
        session, actor=f"staff:{staff_id}" if staff_id else f"participant:{participant.id}",
        action="symptoms_reported", entity="SymptomReport", entity_id=report.id,
        site_id=participant.site_id, participant_id=participant.id, at=now,
        after={"symptoms": report.symptoms, "danger": report.danger, "noticed_at": noticed_at},
    )
    if danger:
        raise_flag(
            session, key=f"danger:{report.id}", kind="danger_symptom", site_id=participant.site_id,
            participant_id=participant.id, now=now,
            detail=detail("danger_symptom_note", symptoms=[s.key for s in danger], note=report.note)
            if report.note else detail("danger_symptom", symptoms=[s.key for s in danger]),
        )
        review.open_pause(session, cfg, participant=participant, cause="danger_symptom",
                          flag_key=f"danger:{report.id}", now=now)
    elif report.note:
        # The participant is told the team will see the note: a flag is how staff see things.
        raise_flag(
            session, key=f"note:{report.id}", kind="participant_message", site_id=participant.site_id,
            participant_id=participant.id, now=now,
            detail=detail("symptom_note", symptoms=[a["key"] for a in answers], note=report.note),
        )
    return report


def _replayed(existing: SymptomReport, participant: Participant) -> SymptomReport:
    if existing.participant_id != participant.id:
        # Another participant's key: refuse without revealing their report.
        raise SymptomError("client_key_reused")
    return existing


def correct_symptoms(
    session: Session,
    cfg: StudyConfig,
    *,
    report: SymptomReport,
    symptoms: list[dict],
    reason: str,
    staff_id: int,
    now: datetime,
    client_key: str,
    note: str | None = None,
) -> SymptomReport:
    """A staff correction: a new report superseding `report` (only the latest may be corrected).
    An empty list records that the report was entered in error. A reason is required."""
    reason = (reason or "").strip()
    if not reason:
        raise SymptomError("reason_required")
    existing = session.exec(select(SymptomReport).where(SymptomReport.client_key == client_key)).first()
    if existing is not None:
        return existing
    if session.exec(select(SymptomReport.id).where(SymptomReport.supersedes_id == report.id)).first():
        raise SymptomError("already_corrected")
    danger, answers = _danger_answers(symptoms, cfg)
    participant = session.get(Participant, report.participant_id)
    corrected = SymptomReport(
        participant_id=report.participant_id, course_id=report.course_id, noticed_at=report.noticed_at,
        symptoms=answers, danger=bool(danger),
        note=(note or "").strip()[:1000] or report.note, source="staff", staff_id=staff_id,
        received_at=now, client_key=client_key, supersedes_id=report.id, correction_reason=reason[:500],
    )
    try:
        with session.begin_nested():
            session.add(corrected)
    except IntegrityError:
        # A concurrent replay (same key: its result) or another correction of the same report.
        session.expire_all()
        raced = session.exec(select(SymptomReport).where(SymptomReport.client_key == client_key)).first()
        if raced is not None:
            return raced
        raise SymptomError("already_corrected") from None
    audit.record(
        session, actor=f"staff:{staff_id}", action="symptom_report_superseded", entity="SymptomReport",
        entity_id=corrected.id, site_id=participant.site_id, participant_id=participant.id, at=now,
        reason=corrected.correction_reason,
        before={"id": report.id, "symptoms": report.symptoms, "danger": report.danger},
        after={"symptoms": corrected.symptoms, "danger": corrected.danger},
    )
    if danger and not report.danger:
        raise_flag(session, key=f"danger:{corrected.id}", kind="danger_symptom", site_id=participant.site_id,
                   participant_id=participant.id, now=now,
                   detail=detail("danger_symptom_corrected", symptoms=[s.key for s in danger]))
        review.open_pause(session, cfg, participant=participant, cause="danger_symptom",
                          flag_key=f"danger:{corrected.id}", now=now)
    return corrected


def current_reports(reports: list[SymptomReport]) -> list[SymptomReport]:
    """Reports nothing supersedes (a correction replaces what it corrects)."""
    return course_record.current(reports)
