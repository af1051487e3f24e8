"""Concomitant medications: entry and correction, checked against the protocol's prohibited and
restricted list (records.toml). A prohibited match in its window proposes a protocol deviation."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta

from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, select

from diary import audit, course_record, records, study
from diary.models import ConcomitantMedication, Course, Participant
from diary.records import ConmedRule, ProposedDeviation, RecordsConfig
from diary.services import deviations
from diary.study import StudyConfig


class ConmedError(ValueError):
    def __init__(self, field: str, code: str):
        super().__init__(f"{field}: {code}")
        self.field = field
        self.code = code


@dataclass(frozen=True)
class Saved:
    conmed: ConcomitantMedication
    matches: list[ConmedRule]
    proposed: list  # ProtocolDeviation proposals raised by this entry


def _snapshot(c: ConcomitantMedication) -> dict:
    return {k: getattr(c, k) for k in ("drug", "dose", "route", "start_date", "stop_date", "indication", "matched",
                                       "retracted")}


def _courses(session: Session, cfg: StudyConfig, participant: Participant) -> list[tuple[date, date]]:
    return [(c.start_date, c.start_date + timedelta(days=cfg.course_length_days - 1))
            for c in session.exec(select(Course).where(Course.participant_id == participant.id))]


def record(session: Session, cfg: StudyConfig, rcfg: RecordsConfig, *, participant: Participant, drug: str,
           start_date: date | None, staff_id: int, now: datetime, dose: str | None = None,
           route: str | None = None, stop_date: date | None = None, indication: str | None = None,
           supersedes: ConcomitantMedication | None = None, reason: str | None = None,
           retract: bool = False) -> Saved:
    """Save an entry (or a correction with a reason, or a retraction: 'entered in error')."""
    drug = (drug or "").strip()
    today = study.local_date(now, participant.timezone)
    if not drug:
        raise ConmedError("drug", "required")
    if start_date is None or start_date > today:
        raise ConmedError("start_date", "invalid")
    if stop_date is not None and stop_date < start_date:
        raise ConmedError("stop_date", "before_start")
    reason = (reason or "").strip()
    if supersedes is not None:
        if supersedes.participant_id != participant.id:
            raise ConmedError("entry", "invalid")
        if not reason:
            raise ConmedError("reason", "required")
    matches = records.conmed_matches(drug, rcfg.conmeds) if not retract else []
    row = ConcomitantMedication(
        participant_id=participant.id, drug=drug[:200], dose=(dose or "").strip()[:100] or None,
        route=(route or "").strip()[:50] or None, start_date=start_date, stop_date=stop_date,
        indication=(indication or "").strip()[:200] or None, matched=[m.key for m in matches], retracted=retract,
        staff_id=staff_id, entered_at=now, supersedes_id=supersedes.id if supersedes else None,
        correction_reason=reason[:500] or None)
    try:
        with session.begin_nested():
            session.add(row)
    except IntegrityError:
        raise ConmedError("entry", "already_corrected") from None
    audit.record(session, actor=f"staff:{staff_id}", action="conmed_recorded" if supersedes is None else
                 "conmed_superseded", entity="ConcomitantMedication", entity_id=row.id,
                 site_id=participant.site_id, participant_id=participant.id, at=now, reason=row.correction_reason,
                 before=_snapshot(supersedes) if supersedes else None, after=_snapshot(row))
    courses = _courses(session, cfg, participant)
    proposed = []
    for rule in matches:
        if rule.level == "prohibited" and records.in_window(rule, start_date, stop_date, courses):
            finding = ProposedDeviation(
                key=f"conmed:{_first(session, row)}:{rule.key}", category="prohibited_medication",
                occurred_on=start_date, description=f"{rule.label_en}: {drug} from {start_date.isoformat()}")
            dev = deviations.propose(session, participant=participant, finding=finding, now=now, conmed_id=row.id)
            if dev is not None:
                proposed.append(dev)
    return Saved(row, matches, proposed)


def _first(session: Session, row: ConcomitantMedication) -> int:
    """The id of the entry's first version: a correction does not propose the same deviation again."""
    while row.supersedes_id is not None:
        row = session.get(ConcomitantMedication, row.supersedes_id)
    return row.id


def current(rows: list[ConcomitantMedication]) -> list[ConcomitantMedication]:
    return sorted((r for r in course_record.current(rows) if not r.retracted),
                  key=lambda r: (r.start_date, r.id), reverse=True)
