"""The one loader of course records (diary/course_record.py), by id or in bulk.

The facts of a course come from seven selects, each bounded by the same sub-select of courses:
the courses with their participants and sites, decisions (with the participant's acknowledgement of
each), current dose logs, current blood counts, current symptom reports and review pauses. A page
or a check-off, which loads one participant's courses, sends them as ONE statement (a UNION ALL of
the seven, each fact's values placed in typed slots); the bulk readers (the adherence grid, the
scheduler's tick, the export: `log_details=False`) send one statement per kind and stream the rows
in batches, which is faster for 8,000 courses. Either way the rows are read by the same code. Rows
are plain tuples (no ORM identity map). `is_current` is the SQL form of the "current row" rule.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import time
from functools import lru_cache
from typing import NamedTuple

from sqlalchemy import (
    Boolean,
    Date,
    Float,
    Integer,
    String,
    Time,
    bindparam,
    case,
    cast,
    exists,
    func,
    literal_column,
    null,
    select,
    type_coerce,
    union_all,
)
from sqlalchemy.orm import aliased
from sqlmodel import Session

from diary.course_record import CourseRecord, DecisionFact, LabFact, LogFact, PauseFact, SymptomFact
from diary.models import (
    Course,
    DoseChangeAck,
    DoseDecision,
    DoseLog,
    LabResult,
    Participant,
    ReviewPause,
    Site,
    SymptomReport,
    course_not_voided,
)
from diary.sqltypes import UTCDateTime

_OUTCOME_CODES = {"t": "taken", "n": "not_taken"}
_NONE: dict[int, str] = {}
# The slot types of the one-statement form: each fact's values go, in order, into the next free
# slot of their type, so every column of the UNION has one type on both databases.
_TYPES = {int: Integer(), float: Float(), str: String(), "date": Date(), "time": Time(),
          "instant": UTCDateTime(), bool: Boolean()}


def is_current(model):
    """SQL: the row nothing supersedes (the Python form is course_record.current)."""
    newer = aliased(model)
    return ~exists().where(newer.supersedes_id == model.id)


def _reminder_time(value: str) -> time:
    try:
        return time.fromisoformat(value)
    except (TypeError, ValueError):
        return time(8, 0)


def _parts(where, log_details: bool, dialect: str) -> dict[str, tuple[list, list, object]]:
    """kind → ([(slot type, column)], criteria, order): the selects the loader reads, each headed by
    its course id."""
    ids = select(Course.id).join(Participant, Participant.id == Course.participant_id).where(*where) \
        .scalar_subquery()
    parts = {
        "course": ([(int, Course.id), (int, Course.participant_id), (int, Participant.site_id),
                    (int, Course.cycle_number), ("date", Course.start_date), (float, Course.starting_dose_mg),
                    (str, Participant.timezone), (str, Participant.status), ("instant", Participant.ended_at),
                    (str, Participant.reminder_time), (str, Participant.study_number), (str, Participant.cohort),
                    (str, Site.code), (int, Course.last_day), ("time", Site.quiet_start),
                    ("time", Site.quiet_end)], list(where), None),
        "decision": ([(int, DoseDecision.course_id), (int, DoseDecision.id), (int, DoseDecision.effective_day),
                      (float, DoseDecision.dose_mg), (str, DoseDecision.action),
                      ("instant", DoseChangeAck.acknowledged_at)],
                     [DoseDecision.course_id.in_(ids)], DoseDecision.id),
        "lab": ([(int, LabResult.course_id), (int, LabResult.id), (int, LabResult.course_day),
                 (float, LabResult.plt)], [LabResult.course_id.in_(ids), is_current(LabResult)], LabResult.id),
        "symptom": ([(int, SymptomReport.course_id), (int, SymptomReport.id), (bool, SymptomReport.danger),
                     ("instant", SymptomReport.received_at)],
                    [SymptomReport.course_id.in_(ids), is_current(SymptomReport)], SymptomReport.id),
        "pause": ([(int, ReviewPause.course_id), (int, ReviewPause.id), ("instant", ReviewPause.opened_at),
                   ("instant", ReviewPause.closed_at), (str, ReviewPause.cause)],
                  [ReviewPause.course_id.in_(ids)], ReviewPause.id),
    }
    current_logs = [DoseLog.course_id.in_(ids), is_current(DoseLog)]
    if log_details:
        # Retractions too: a day's newest record is the one a new record supersedes (its `heads`).
        parts["log"] = ([(int, DoseLog.course_id), (int, DoseLog.id), (int, DoseLog.course_day),
                         (str, DoseLog.outcome), ("instant", DoseLog.taken_at), (str, DoseLog.source),
                         ("instant", DoseLog.received_at), (str, DoseLog.fasting), (str, DoseLog.reason),
                         (str, DoseLog.client_key), (float, DoseLog.dose_mg), (int, DoseLog.tablets)],
                        current_logs, DoseLog.id)
    else:
        # One row per course ("3t,4n,…"), not one per log: the grid's 8,000 courses have ~90,000.
        code = cast(DoseLog.course_day, String) + case((DoseLog.outcome == "taken", "t"), else_="n")
        packed = func.string_agg(code, ",") if dialect == "postgresql" else func.group_concat(code, ",")
        parts["packed"] = ([(int, DoseLog.course_id), (str, packed)],
                           [*current_logs, DoseLog.outcome != "retracted"], None)
    return parts


def _select(kind: str, columns: list, criteria: list):
    statement = select(*(column for _, column in columns))
    if kind == "course":
        statement = statement.join(Participant, Participant.id == Course.participant_id) \
            .join(Site, Site.id == Participant.site_id)
    elif kind == "decision":
        statement = statement.outerjoin(DoseChangeAck, DoseChangeAck.decision_id == DoseDecision.id)
    statement = statement.where(*criteria)
    return statement.group_by(DoseLog.course_id) if kind == "packed" else statement


def _one_statement(parts: dict) -> tuple[object, dict[str, list[int]]]:
    """The UNION ALL of the parts, and where each part's values sit in its rows (after the kind)."""
    places = {kind: _places(columns) for kind, (columns, _, _) in parts.items()}
    types = list(_TYPES)
    layout = sorted({place for kind_places in places.values() for place in kind_places},
                    key=lambda place: (types.index(place[0]), place[1]))
    slot = {place: 1 + i for i, place in enumerate(layout)}
    selects, positions = [], {}
    for number, (kind, (columns, criteria, _)) in enumerate(parts.items()):
        filled = {place: type_coerce(column, _TYPES[place[0]])
                  for place, (_, column) in zip(places[kind], columns, strict=True)}
        positions[kind] = [slot[place] for place in places[kind]]
        values = [filled.get(place, cast(null(), _TYPES[place[0]])) for place in layout]
        head = literal_column(str(number), Integer())
        selects.append(_select(kind, [(None, head), *((None, v) for v in values)], criteria))
    return union_all(*selects), positions


def _places(columns: list) -> list[tuple]:
    """(slot type, n): each column is the n-th of its type in its part."""
    used, places = defaultdict(int), []
    for type_, _ in columns:
        places.append((type_, used[type_]))
        used[type_] += 1
    return places


class _Plan(NamedTuple):
    """The statements of a load: one UNION (and where each kind's values sit in its rows), or one
    select per kind."""

    kinds: tuple[str, ...]
    union: object = None
    positions: dict | None = None
    selects: tuple = ()


def _plan(where, log_details: bool, dialect: str) -> _Plan:
    parts = _parts(where, log_details, dialect)
    if not log_details:
        selects = []
        for kind, (columns, criteria, order) in parts.items():
            statement = _select(kind, columns, criteria)
            selects.append(statement if order is None else statement.order_by(order))
        return _Plan(tuple(parts), selects=tuple(selects))
    union, positions = _one_statement(parts)
    # Each kind's rows in id order (their second value; a course's is its participant).
    return _Plan(tuple(parts), union.order_by(literal_column("1"), literal_column("3")), positions)


@lru_cache(maxsize=8)
def _plan_by(key: str, dialect: str) -> _Plan:
    """The plans of the per-request loads, built once (building the UNION costs more than running
    it); `:key` is the course or participant id."""
    where = {"course": (Course.id == bindparam("key"),),
             "participant": (Course.participant_id == bindparam("key"), course_not_voided())}[key]
    return _plan(where, True, dialect)


def _fact_rows(conn, plan: _Plan, params: dict):
    """(kind, values) for every row of the plan."""
    if plan.union is None:
        for kind, statement in zip(plan.kinds, plan.selects, strict=True):
            # In batches: each is freed before the next arrives, so tens of thousands of rows never
            # live at once (the cyclic collector would walk them again and again).
            for batch in conn.execute(statement, params).partitions(1000):
                for row in batch:
                    yield kind, row
        return
    kinds, positions = plan.kinds, plan.positions
    for row in conn.execute(plan.union, params):
        kind = kinds[row[0]]
        yield kind, tuple(row[i] for i in positions[kind])


def load_records(session: Session, *where, log_details: bool = True) -> dict[int, CourseRecord]:
    """Course id → record, for the courses matching `where` (criteria on Course and Participant).

    `log_details=False` is the bulk form (thousands of courses): it loads only each current log's
    outcome (what a day's status depends on), not what a page shows of it (times, source, fasting,
    reason), and sends one statement per kind of fact instead of one in all."""
    session.flush()  # Core reads below do not autoflush
    conn = session.connection()
    return _records(conn, _plan(where, log_details, conn.dialect.name), {}, log_details)


def load_record(session: Session, course_id: int) -> CourseRecord | None:
    """The record of one course (one statement), or None."""
    session.flush()
    conn = session.connection()
    return _records(conn, _plan_by("course", conn.dialect.name), {"key": course_id}, True).get(course_id)


def participant_records(session: Session, participant_id: int) -> dict[int, CourseRecord]:
    """Course id → record of a participant's courses, voided ones aside (one statement)."""
    session.flush()
    conn = session.connection()
    return _records(conn, _plan_by("participant", conn.dialect.name), {"key": participant_id}, True)


def _records(conn, plan: _Plan, params: dict, log_details: bool) -> dict[int, CourseRecord]:
    courses: list = []
    decisions: dict[int, list[tuple[int, float]]] = defaultdict(list)
    signed: dict[int, list[DecisionFact]] = defaultdict(list)
    logs: dict[int, dict[int, LogFact]] = defaultdict(dict)
    heads: dict[int, dict[int, LogFact]] = defaultdict(dict)
    outcomes: dict[int, dict[int, str]] = {}
    labs: dict[int, list[LabFact]] = defaultdict(list)
    reports: dict[int, list[SymptomFact]] = defaultdict(list)
    pauses: dict[int, list[PauseFact]] = defaultdict(list)
    for kind, (course_id, *fact) in _fact_rows(conn, plan, params):
        if kind == "course":
            courses.append((course_id, *fact))
        elif kind == "decision":
            decision = DecisionFact(*fact)
            decisions[course_id].append((decision.day, decision.dose_mg))
            signed[course_id].append(decision)
        elif kind == "log":
            log = heads[course_id][fact[1]] = LogFact(*fact)
            if log.outcome != "retracted":
                logs[course_id][log.day] = log
        elif kind == "packed":
            outcomes[course_id] = {int(item[:-1]): _OUTCOME_CODES[item[-1]] for item in fact[0].split(",")}
        elif kind == "lab":
            labs[course_id].append(LabFact(*fact))
        elif kind == "symptom":
            reports[course_id].append(SymptomFact(*fact))
        else:
            pauses[course_id].append(PauseFact(*fact))
    if log_details:
        outcomes = {cid: {day: log.outcome for day, log in by_day.items()} for cid, by_day in logs.items()}
    return {
        cid: CourseRecord(
            course_id=cid, participant_id=pid, site_id=site_id, cycle=cycle, day1=day1, starting_dose_mg=mg,
            tz=tz, participant_status=status, ended_at=ended_at, reminder_time=_reminder_time(reminder),
            study_number=number, cohort=cohort, site_code=site_code,
            decisions=tuple(decisions.get(cid, ())), signed=tuple(signed.get(cid, ())),
            outcomes=outcomes.get(cid, _NONE), logs=logs.get(cid, {}) if log_details else None,
            heads=heads.get(cid, {}) if log_details else None,
            labs=tuple(labs.get(cid, ())),
            symptoms=tuple(reports.get(cid, ())), pauses=tuple(pauses.get(cid, ())), last_day=last_day,
            quiet_start=quiet_start, quiet_end=quiet_end)
        for (cid, pid, site_id, cycle, day1, mg, tz, status, ended_at, reminder, number, cohort, site_code,
             last_day, quiet_start, quiet_end) in courses
    }
