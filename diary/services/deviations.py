"""Protocol deviations: the log, the software's proposals, and staff decisions on them.

A deviation is a chain of versions (append-only; `first_id` names it). Staff log one directly
(confirmed), or the software proposes one it can see (status proposed, under a unique finding key so
it is proposed once). Staff confirm a proposal with a classification or dismiss it with a reason; an
investigator closes a confirmed one. Every version is audited.
"""

from __future__ import annotations

from datetime import date, datetime
from zoneinfo import ZoneInfo

from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, select

from diary import audit, course_record, records, study
from diary.course_record import CourseRecord
from diary.models import Participant, ProtocolDeviation, course_not_voided
from diary.records import ProposedDeviation, RecordsConfig
from diary.services.course_records import load_records, participant_records
from diary.study import StudyConfig

CLASSIFICATIONS = ("minor", "major")
AUDIT_ACTION = {"confirm": "deviation_confirmed", "dismiss": "deviation_dismissed", "correct": "deviation_corrected",
                "close": "deviation_closed"}


class DeviationError(ValueError):
    def __init__(self, field: str, code: str):
        super().__init__(f"{field}: {code}")
        self.field = field
        self.code = code


def chain_id(dev: ProtocolDeviation) -> int:
    return dev.first_id or dev.id


def _snapshot(dev: ProtocolDeviation) -> dict:
    return {k: getattr(dev, k) for k in ("status", "category", "description", "occurred_on", "classification",
                                         "found_by", "finding_key", "conmed_id")}


def _add(session: Session, dev: ProtocolDeviation, participant: Participant, now: datetime, action: str,
         previous: ProtocolDeviation | None = None) -> ProtocolDeviation | None:
    try:
        # Unique keys: a finding is proposed once, and only the latest version can change.
        with session.begin_nested():
            session.add(dev)
    except IntegrityError:
        return None
    audit.record(session, actor=f"staff:{dev.staff_id}" if dev.staff_id else "system", action=action,
                 entity="ProtocolDeviation", entity_id=dev.id, site_id=participant.site_id,
                 participant_id=participant.id, at=now, reason=dev.reason,
                 before=_snapshot(previous) if previous else None, after=_snapshot(dev))
    return dev


def propose(session: Session, *, participant: Participant, finding: ProposedDeviation, now: datetime,
            conmed_id: int | None = None) -> ProtocolDeviation | None:
    """Propose what the software found, unless it was proposed before (then None)."""
    if session.exec(select(ProtocolDeviation.id).where(ProtocolDeviation.finding_key == finding.key)).first():
        return None
    dev = ProtocolDeviation(participant_id=participant.id, status="proposed", category=finding.category,
                            description=finding.description[:1000], occurred_on=finding.occurred_on,
                            found_by="system", finding_key=finding.key, conmed_id=conmed_id, entered_at=now)
    return _add(session, dev, participant, now, "deviation_proposed")


def _check(rcfg: RecordsConfig, category: str, description: str, occurred_on: date | None, today: date,
           classification: str | None) -> None:
    if category not in rcfg.deviations.categories:
        raise DeviationError("category", "invalid")
    if not (description or "").strip():
        raise DeviationError("description", "required")
    if occurred_on is None or occurred_on > today:
        raise DeviationError("occurred_on", "invalid")
    if classification not in CLASSIFICATIONS:
        raise DeviationError("classification", "required")


def log(session: Session, rcfg: RecordsConfig, *, participant: Participant, category: str, description: str,
        occurred_on: date | None, classification: str | None, staff_id: int, now: datetime) -> ProtocolDeviation:
    """A deviation found by staff: logged as confirmed, with who found it."""
    _check(rcfg, category, description, occurred_on, study.local_date(now, participant.timezone), classification)
    dev = ProtocolDeviation(participant_id=participant.id, status="confirmed", category=category,
                            description=description.strip()[:1000], occurred_on=occurred_on,
                            classification=classification, found_by=f"staff:{staff_id}", staff_id=staff_id,
                            entered_at=now)
    return _add(session, dev, participant, now, "deviation_logged")


def decide(session: Session, rcfg: RecordsConfig, *, dev: ProtocolDeviation, action: str, staff_id: int,
           staff_role: str, now: datetime, reason: str | None = None, classification: str | None = None,
           category: str | None = None, description: str | None = None) -> ProtocolDeviation:
    """confirm or dismiss a proposal; correct a confirmed entry (reason); close one (investigator)."""
    participant = session.get(Participant, dev.participant_id)
    reason = (reason or "").strip()
    allowed = {"proposed": ("confirm", "dismiss"), "confirmed": ("correct", "close")}.get(dev.status, ())
    if action not in allowed:
        raise DeviationError("action", "not_allowed")
    if action == "close" and staff_role != "investigator":
        raise DeviationError("action", "investigator_only")
    if action in ("dismiss", "correct", "close") and not reason:
        raise DeviationError("reason", "required")
    category = category or dev.category
    description = (description or "").strip() or dev.description
    classification = classification or dev.classification
    if action in ("confirm", "correct"):
        _check(rcfg, category, description, dev.occurred_on, study.local_date(now, participant.timezone),
               classification)
    status = {"confirm": "confirmed", "dismiss": "dismissed", "correct": "confirmed", "close": "closed"}[action]
    new = ProtocolDeviation(
        participant_id=dev.participant_id, first_id=chain_id(dev), status=status, category=category,
        description=description[:1000], occurred_on=dev.occurred_on,
        classification=classification if status != "dismissed" else dev.classification, found_by=dev.found_by,
        finding_key=dev.finding_key, conmed_id=dev.conmed_id, staff_id=staff_id, entered_at=now,
        supersedes_id=dev.id, reason=reason[:500] or None)
    if _add(session, new, participant, now, AUDIT_ACTION[action], dev) is None:
        raise DeviationError("entry", "already_changed")
    return new


def current(rows: list[ProtocolDeviation]) -> list[ProtocolDeviation]:
    return sorted(course_record.current(rows), key=lambda r: (r.occurred_on, r.id), reverse=True)


def _course_findings(record: CourseRecord, cfg: StudyConfig, rcfg: RecordsConfig,
                     now: datetime) -> list[ProposedDeviation]:
    """What one course's record shows (pure rules in diary/records.py)."""
    zone = ZoneInfo(record.tz)
    plan = course_record.course_days(record, cfg, now)
    # The same draw window and pause the grid and the scheduler read (one rule each).
    drawn, paused = course_record.draws_done(record, cfg), course_record.paused_days(record, cfg)
    days = [records.DayRecord(
        day=d.day, date=d.date, dose_mg=d.dose_mg, draw_day=d.draw_day, has_result=d.day in drawn,
        paused=d.day in paused,
        taken_at_local=(d.log.taken_at.astimezone(zone)
                        if d.log is not None and d.log.outcome == "taken" and d.log.taken_at else None))
        for d in plan]
    return records.course_deviations(record.course_id, record.cycle, days, study.local_date(now, record.tz),
                                     rcfg.deviations, cfg.min_hours_between_doses)


def findings(session: Session, cfg: StudyConfig, rcfg: RecordsConfig, participant: Participant,
             now: datetime) -> list[ProposedDeviation]:
    """What the participant's records show, per course."""
    courses = participant_records(session, participant.id)
    return [finding for record in sorted(courses.values(), key=lambda r: r.course_id)
            for finding in _course_findings(record, cfg, rcfg, now)]


def scan_sites(session: Session, cfg: StudyConfig, rcfg: RecordsConfig, site_ids: frozenset[int] | None,
               now: datetime) -> int:
    """Propose every finding not proposed before at these sites (None: every site), so that the site
    list is complete without opening each participant's page; returns how many are new. Reads every
    course through the one bulk loader (a fixed number of queries)."""
    where = [course_not_voided()]
    if site_ids is not None:
        where.append(Participant.site_id.in_(sorted(site_ids)))
    courses = load_records(session, *where)
    people = {p.id: p for p in session.exec(
        select(Participant).where(Participant.id.in_({r.participant_id for r in courses.values()}))).all()}
    new = 0
    for record in sorted(courses.values(), key=lambda r: r.course_id):
        for finding in _course_findings(record, cfg, rcfg, now):
            new += propose(session, participant=people[record.participant_id], finding=finding, now=now) is not None
    return new


def scan(session: Session, cfg: StudyConfig, rcfg: RecordsConfig, participant: Participant,
         now: datetime) -> list[ProtocolDeviation]:
    """Propose every finding not proposed before; returns the new proposals."""
    proposed = [propose(session, participant=participant, finding=f, now=now)
                for f in findings(session, cfg, rcfg, participant, now)]
    return [p for p in proposed if p is not None]
