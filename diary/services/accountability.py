"""Drug accountability: tablets dispensed and returned per course, reconciled against the diary.

Append-only: a correction is a new row superseding the old, with a reason. A return whose
reconciliation is beyond the configured tolerance raises a flag (one per return entry).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime

from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, select

from diary import audit, course_record, records, study
from diary.models import Course, DoseLog, DrugAccountability, Participant
from diary.records import Reconciliation, RecordsConfig
from diary.services.course_records import is_current, load_record
from diary.services.flags import raise_flag
from diary.study import StudyConfig


class AccountabilityError(ValueError):
    def __init__(self, field: str, code: str):
        super().__init__(f"{field}: {code}")
        self.field = field
        self.code = code


@dataclass(frozen=True)
class CourseAccount:
    course: Course
    entries: list[DrugAccountability]  # current rows, in entry order
    reconciliation: Reconciliation


def _snapshot(row: DrugAccountability) -> dict:
    return {"kind": row.kind, "course_id": row.course_id, "on_date": row.on_date, "tablets": row.tablets,
            "bottles": row.bottles, "strength_mg": row.strength_mg, "lot_number": row.lot_number,
            "expiry": row.expiry, "warnings": row.warnings, "staff_id": row.staff_id}


def _check(kind: str, *, tablets: int | None, on_date: date | None, today: date, strength_mg: float | None,
           lot_number: str | None, expiry: date | None, bottles: int | None) -> None:
    if tablets is None or tablets < 0 or tablets > 10000:
        raise AccountabilityError("tablets", "invalid")
    if bottles is not None and not 0 <= bottles <= 100:
        raise AccountabilityError("bottles", "invalid")
    if on_date is None:
        raise AccountabilityError("on_date", "required")
    if on_date > today:
        raise AccountabilityError("on_date", "in_future")
    if kind == "dispensed":
        if strength_mg is None or not 0 < strength_mg <= 100:
            raise AccountabilityError("strength_mg", "invalid")
        if not (lot_number or "").strip():
            raise AccountabilityError("lot_number", "required")
        if expiry is None:
            raise AccountabilityError("expiry", "required")


def dispensing_warnings(cfg: StudyConfig, course: Course, *, strength_mg: float, expiry: date,
                        on_date: date) -> list[str]:
    last_day = study.date_of_day(course.start_date, cfg.course_length_days, cfg)
    return records.lot_warnings(strength_mg=strength_mg, expiry=expiry, dispensed_on=on_date,
                                last_course_date=last_day, study_strength_mg=cfg.tablet_strength_mg)


def record(
    session: Session, cfg: StudyConfig, rcfg: RecordsConfig, *, course: Course, participant: Participant,
    kind: str, on_date: date | None, tablets: int | None, staff_id: int, now: datetime,
    bottles: int | None = None, strength_mg: float | None = None, lot_number: str | None = None,
    expiry: date | None = None, accept_warnings: bool = False, supersedes: DrugAccountability | None = None,
    reason: str | None = None,
) -> tuple[DrugAccountability | None, list[str]]:
    """Record a dispensing or a return (or correct one, with a reason).

    A dispensing with warnings (expired lot, wrong strength) is saved only when `accept_warnings`;
    otherwise nothing is written and the warnings are returned for the pharmacist to see."""
    if kind not in ("dispensed", "returned"):
        raise AccountabilityError("kind", "invalid")
    if course.participant_id != participant.id:
        raise AccountabilityError("course", "invalid")
    today = study.local_date(now, participant.timezone)
    _check(kind, tablets=tablets, on_date=on_date, today=today, strength_mg=strength_mg,
           lot_number=lot_number, expiry=expiry, bottles=bottles)
    reason = (reason or "").strip()
    if supersedes is not None:
        if not reason:
            raise AccountabilityError("reason", "required")
        if supersedes.course_id != course.id or supersedes.kind != kind:
            raise AccountabilityError("entry", "invalid")
    warnings: list[str] = []
    if kind == "dispensed":
        warnings = dispensing_warnings(cfg, course, strength_mg=strength_mg, expiry=expiry, on_date=on_date)
        if warnings and not accept_warnings:
            return None, warnings
    row = DrugAccountability(
        participant_id=participant.id, course_id=course.id, kind=kind, on_date=on_date, tablets=tablets,
        bottles=bottles, strength_mg=strength_mg if kind == "dispensed" else None,
        lot_number=(lot_number or "").strip()[:64] or None, expiry=expiry if kind == "dispensed" else None,
        warnings=warnings, staff_id=staff_id, entered_at=now,
        supersedes_id=supersedes.id if supersedes else None, correction_reason=reason[:500] or None)
    try:
        # The unique supersedes_id refuses a second correction of one row, even from a concurrent request.
        with session.begin_nested():
            session.add(row)
    except IntegrityError:
        raise AccountabilityError("entry", "already_corrected") from None
    audit.record(session, actor=f"staff:{staff_id}",
                 action=f"drug_{kind}" if supersedes is None else "drug_accountability_superseded",
                 entity="DrugAccountability", entity_id=row.id, site_id=participant.site_id,
                 participant_id=participant.id, at=now, reason=row.correction_reason,
                 before=_snapshot(supersedes) if supersedes else None, after=_snapshot(row))
    account = course_account(session, cfg, rcfg, course)
    if kind == "returned" and account.reconciliation.discrepant:
        rec = account.reconciliation
        raise_flag(session, key=f"accountability:{row.id}", kind="accountability", site_id=participant.site_id,
                   participant_id=participant.id, now=now,
                   detail=(f"Cycle {course.cycle_number}: {rec.unaccounted:+d} tablets unaccounted "
                           f"(dispensed {rec.dispensed}, returned {rec.returned}, logged taken "
                           f"{rec.expected_use}; tolerance {rec.tolerance})"))
    return row, warnings


def current(rows: list[DrugAccountability]) -> list[DrugAccountability]:
    return sorted(course_record.current(rows), key=lambda r: r.id)


def taken_tablets(session: Session, course: Course, cfg: StudyConfig) -> list[int]:
    """Tablets of each current "taken" log: what the log recorded as in force when it was made (a
    later decision never changes it), else what the signed prescription said for that day."""
    prescribed = course_record.doses(load_record(session, course.id), cfg)
    return [tablets if tablets is not None else study.tablet_count(prescribed[day - 1], cfg)
            for day, tablets in session.exec(
                select(DoseLog.course_day, DoseLog.tablets).where(
                    DoseLog.course_id == course.id, DoseLog.outcome == "taken", is_current(DoseLog))).all()]


def course_account(session: Session, cfg: StudyConfig, rcfg: RecordsConfig, course: Course) -> CourseAccount:
    entries = current(list(session.exec(select(DrugAccountability)
                                        .where(DrugAccountability.course_id == course.id)).all()))
    rec = records.reconcile(
        sum(e.tablets for e in entries if e.kind == "dispensed"),
        sum(e.tablets for e in entries if e.kind == "returned"),
        taken_tablets(session, course, cfg), rcfg.accountability)
    return CourseAccount(course, entries, rec)


def participant_accounts(session: Session, cfg: StudyConfig, rcfg: RecordsConfig,
                         participant: Participant) -> list[CourseAccount]:
    courses = session.exec(select(Course).where(Course.participant_id == participant.id)
                           .order_by(Course.cycle_number)).all()
    return [course_account(session, cfg, rcfg, c) for c in courses]


def site_log(session: Session, sites: frozenset[int] | None) -> list[tuple[DrugAccountability, str, int]]:
    """Every current movement at `sites` (None: all), with study number and cycle: the pharmacy's view."""
    query = (select(DrugAccountability, Participant.study_number, Course.cycle_number)
             .join(Participant, Participant.id == DrugAccountability.participant_id)
             .join(Course, Course.id == DrugAccountability.course_id)
             .order_by(DrugAccountability.on_date, DrugAccountability.id))
    if sites is not None:
        query = query.where(Participant.site_id.in_(sorted(sites)))
    rows = session.exec(query).all()
    return course_record.current(rows, id_of=lambda row: row[0].id, supersedes_of=lambda row: row[0].supersedes_id)


def history_query(participant_id: int):
    """Every row of a participant, superseded ones included (the log a monitor reads), oldest first."""
    return (select(DrugAccountability, Course.cycle_number)
            .join(Course, Course.id == DrugAccountability.course_id)
            .where(DrugAccountability.participant_id == participant_id)
            .order_by(DrugAccountability.id))
