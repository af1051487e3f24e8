"""Symptom reports: recorded from the page, offline sync or staff; danger answers flag at once."""

from __future__ import annotations

from datetime import datetime

from sqlmodel import Session, select

from diary import audit, course_record, study
from diary.models import Participant, SymptomReport
from diary.services import review
from diary.services.flags import raise_flag
from diary.study import StudyConfig

SEVERITIES = ("mild", "moderate", "severe")


class SymptomError(ValueError):
    def __init__(self, code: str):
        super().__init__(code)
        self.code = code


def _danger_answers(symptoms: list[dict], cfg: StudyConfig) -> list:
    """The danger symptoms among the answers; refuses unknown symptoms and missing severities."""
    try:
        danger = study.danger_symptoms([s.get("key") for s in symptoms], cfg)
    except ValueError:
        raise SymptomError("unknown_symptom") from None
    if any(s.get("severity") not in SEVERITIES for s in symptoms):
        raise SymptomError("severity_required")
    return danger


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
        if existing.participant_id != participant.id:
            # Another participant's key: refuse without revealing their report.
            raise SymptomError("client_key_reused")
        return existing
    if not symptoms:
        raise SymptomError("nothing_chosen")
    danger = _danger_answers(symptoms, cfg)
    report = SymptomReport(
        participant_id=participant.id, course_id=course_id, noticed_at=noticed_at,
        symptoms=[{"key": s["key"], "severity": s["severity"]} for s in symptoms],
        danger=bool(danger), note=(note or "").strip()[:1000] or None, source=source,
        staff_id=staff_id, received_at=now, client_key=client_key,
    )
    session.add(report)
    session.flush()
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
            detail="Danger symptom: " + ", ".join(s.label_en for s in danger),
        )
        review.open_pause(session, cfg, participant=participant, cause="danger_symptom",
                          flag_key=f"danger:{report.id}", now=now)
    return report


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
    danger = _danger_answers(symptoms, cfg)
    participant = session.get(Participant, report.participant_id)
    corrected = SymptomReport(
        participant_id=report.participant_id, course_id=report.course_id, noticed_at=report.noticed_at,
        symptoms=[{"key": s["key"], "severity": s["severity"]} for s in symptoms], danger=bool(danger),
        note=(note or "").strip()[:1000] or report.note, source="staff", staff_id=staff_id,
        received_at=now, client_key=client_key, supersedes_id=report.id, correction_reason=reason[:500],
    )
    session.add(corrected)
    session.flush()
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
                   detail="Danger symptom (staff correction): " + ", ".join(s.label_en for s in danger))
        review.open_pause(session, cfg, participant=participant, cause="danger_symptom",
                          flag_key=f"danger:{corrected.id}", now=now)
    return corrected


def current_reports(reports: list[SymptomReport]) -> list[SymptomReport]:
    """Reports nothing supersedes (a correction replaces what it corrects)."""
    return course_record.current(reports)
