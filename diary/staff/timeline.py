"""A participant's history, newest first: doses, symptoms, blood counts, decisions, messages, flags."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlmodel import Session, select

from diary.models import (
    AdverseEvent,
    ConcomitantMedication,
    Course,
    DoseChangeAck,
    DoseDecision,
    DoseLog,
    DrugAccountability,
    Flag,
    LabResult,
    Message,
    Participant,
    ProtocolDeviation,
    SymptomReport,
)


@dataclass(frozen=True)
class Event:
    at: datetime
    kind: str  # dose | symptoms | lab | decision | decision_ack | message | flag | …
    row: Any
    cycle: int | None = None


def participant_timeline(session: Session, participant: Participant, limit: int = 200) -> list[Event]:
    """Every recorded event of the participant (one query per kind), newest first."""
    courses = {c.id: c.cycle_number for c in session.exec(
        select(Course).where(Course.participant_id == participant.id)).all()}
    ids = list(courses)
    events: list[Event] = []
    if ids:
        events += [Event(r.received_at, "dose", r, courses[r.course_id]) for r in session.exec(
            select(DoseLog).where(DoseLog.course_id.in_(ids)))]
        events += [Event(r.entered_at, "lab", r, courses[r.course_id]) for r in session.exec(
            select(LabResult).where(LabResult.course_id.in_(ids)))]
        events += [Event(r.signed_at, "decision", r, courses[r.course_id]) for r in session.exec(
            select(DoseDecision).where(DoseDecision.course_id.in_(ids)))]
        acks = select(DoseChangeAck.acknowledged_at, DoseDecision).join(
            DoseDecision, DoseDecision.id == DoseChangeAck.decision_id).where(DoseDecision.course_id.in_(ids))
        events += [Event(at, "decision_ack", decision, courses[decision.course_id])
                   for at, decision in session.exec(acks)]
    events += [Event(r.received_at, "symptoms", r, courses.get(r.course_id)) for r in session.exec(
        select(SymptomReport).where(SymptomReport.participant_id == participant.id))]
    events += [Event(r.created_at, "message", r) for r in session.exec(
        select(Message).where(Message.participant_id == participant.id))]
    events += [Event(r.raised_at, "flag", r) for r in session.exec(
        select(Flag).where(Flag.participant_id == participant.id))]
    events += [Event(r.entered_at, "ae", r, courses.get(r.course_id)) for r in session.exec(
        select(AdverseEvent).where(AdverseEvent.participant_id == participant.id))]
    events += [Event(r.entered_at, "drug", r, courses.get(r.course_id)) for r in session.exec(
        select(DrugAccountability).where(DrugAccountability.participant_id == participant.id))]
    events += [Event(r.entered_at, "conmed", r) for r in session.exec(
        select(ConcomitantMedication).where(ConcomitantMedication.participant_id == participant.id))]
    events += [Event(r.entered_at, "deviation", r) for r in session.exec(
        select(ProtocolDeviation).where(ProtocolDeviation.participant_id == participant.id))]
    events.sort(key=lambda e: (e.at, e.kind), reverse=True)
    return events[:limit]
