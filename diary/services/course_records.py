"""The one loader of course records (diary/course_record.py), by id or in bulk.

The facts of a course come from six selects, each bounded by the same sub-select of courses:
the courses with their participants and sites, decisions (with the participant's acknowledgement of
each), current dose logs, current blood counts, current symptom reports and review pauses. A page
or a check-off, which loads one participant's courses, sends them as ONE statement (a UNION ALL of
the six, each fact's values placed in typed slots). The bulk readers (the adherence grid, the
scheduler's tick, the export: `log_details=False`) send one statement per kind, each course's rows
together, and build each course's facts as its rows stream in, in batches; the logs come packed,
one row per course. A whole-study load (the full grid) reads every course's facts in one scan per
table and drops those of courses it does not keep. Both forms build a record with `_record`. Rows
are plain tuples (no ORM identity map). `is_current` is the SQL form of the "current row" rule.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import fields
from datetime import time
from functools import lru_cache, partial
from itertools import chain, groupby
from operator import itemgetter
from typing import NamedTuple

from sqlalchemy import (
    LABEL_STYLE_NONE,
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
    true,
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


def is_current(model, listed: bool = False, probed: bool = False):
    """SQL: the row nothing supersedes (the Python form is course_record.current).

    `listed`: the same rule as "not in the list of superseded ids", which SQLite builds once per
    statement instead of probing the index once per row; for a statement that reads a whole table
    on SQLite only (PostgreSQL may re-scan that list for every row when it expects it to be large).
    `probed`: the same rule, checked by one index probe per row, always: for the few rows of one
    participant's courses. Left to itself, PostgreSQL turns NOT EXISTS into an anti join, and once
    its statistics say a course has a few hundred rows it hashes a scan of the WHOLE table for it:
    each page and check-off then cost more as the study grew (4,000 rows hashed to find 1, seen in
    bench/checkoff.py). An OFFSET keeps the sub-select from being merged into a join (PostgreSQL
    leaves an EXISTS with an OFFSET as it is written); it changes no result."""
    newer = aliased(model)
    superseding = newer.supersedes_id.is_not(None)  # implied by the match; with statistics it lets
    # PostgreSQL read the few superseding rows by index instead of hashing a scan of the table
    if listed:
        return model.id.not_in(select(newer.supersedes_id).where(superseding))
    if probed:
        return ~select(newer.id).where(newer.supersedes_id == model.id, superseding).offset(0).exists()
    return ~exists().where(newer.supersedes_id == model.id, superseding)


@lru_cache(maxsize=256)  # participants share a handful of reminder times
def _reminder_time(value: str) -> time:
    try:
        return time.fromisoformat(value)
    except (TypeError, ValueError):
        return time(8, 0)


# The course's own values, with its participant's and site's.
_COURSE_COLUMNS = [
    (int, Course.id), (int, Course.participant_id), (int, Participant.site_id), (int, Course.cycle_number),
    ("date", Course.start_date), (float, Course.starting_dose_mg), (str, Participant.timezone),
    (str, Participant.status), ("instant", Participant.ended_at), (str, Participant.reminder_time),
    (str, Participant.study_number), (str, Participant.cohort), (str, Site.code), (int, Course.last_day),
    ("time", Site.quiet_start), ("time", Site.quiet_end)]


def _parts(where, log_details: bool, dialect: str, whole_study: bool = False) -> dict[str, tuple[list, list, object]]:
    """kind → ([(slot type, column)], criteria, order): the selects the loader reads, each headed by
    its course id. Facts are those of the courses `where` selects, as a sub-select; or, for a
    `whole_study` load, of every course (the loader drops those of courses `where` leaves out)."""
    # A whole table on SQLite: the superseded ids as one list; one participant's courses (the
    # one-statement form, with log details): an index probe per row (is_current).
    listed, probed = whole_study and dialect == "sqlite", log_details
    if whole_study:
        def of_courses(column):
            return true()
    else:
        ids = select(Course.id).join(Participant, Participant.id == Course.participant_id).where(*where) \
            .scalar_subquery()

        def of_courses(column):
            return column.in_(ids)

    parts = {
        "course": (_COURSE_COLUMNS, list(where), None),
        "decision": ([(int, DoseDecision.course_id), (int, DoseDecision.id), (int, DoseDecision.effective_day),
                      (float, DoseDecision.dose_mg), (str, DoseDecision.action),
                      ("instant", DoseChangeAck.acknowledged_at)],
                     [of_courses(DoseDecision.course_id)], DoseDecision.id),
        "lab": ([(int, LabResult.course_id), (int, LabResult.id), (int, LabResult.course_day),
                 (float, LabResult.plt)],
                [of_courses(LabResult.course_id), is_current(LabResult, listed, probed)], LabResult.id),
        "symptom": ([(int, SymptomReport.course_id), (int, SymptomReport.id), (bool, SymptomReport.danger),
                     ("instant", SymptomReport.received_at)],
                    [of_courses(SymptomReport.course_id), is_current(SymptomReport, listed, probed)], SymptomReport.id),
        "pause": ([(int, ReviewPause.course_id), (int, ReviewPause.id), ("instant", ReviewPause.opened_at),
                   ("instant", ReviewPause.closed_at), (str, ReviewPause.cause)],
                  [of_courses(ReviewPause.course_id)], ReviewPause.id),
    }
    current_logs = [of_courses(DoseLog.course_id), is_current(DoseLog, listed, probed)]
    if log_details:
        # Retractions too: a day's newest record is the one a new record supersedes (its `heads`).
        parts["log"] = ([(int, DoseLog.course_id), (int, DoseLog.id), (int, DoseLog.course_day),
                         (str, DoseLog.outcome), ("instant", DoseLog.taken_at), (str, DoseLog.source),
                         ("instant", DoseLog.received_at), (str, DoseLog.fasting), (str, DoseLog.reason),
                         (str, DoseLog.client_key), (float, DoseLog.dose_mg), (int, DoseLog.tablets)],
                        current_logs, DoseLog.id)
    else:
        # One row per course, not one per log (the grid's 8,000 courses have ~90,000): its days,
        # "3,4,6", and each day's outcome as a letter, "ttn" (two aggregates of one group read its
        # rows in one order); the loader zips the two into a dict in C.
        def joined(value, separator):
            return func.string_agg(value, separator) if dialect == "postgresql" else \
                func.group_concat(value, separator)

        parts["packed"] = ([(int, DoseLog.course_id), (str, joined(cast(DoseLog.course_day, String), ",")),
                            (str, joined(case((DoseLog.outcome == "taken", "t"), else_="n"), ""))],
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
        # The first part's columns name and type the result's; a later part's values go unlabelled
        # and its empty slots are a bare NULL (PostgreSQL gives it the type of the column it sits
        # in). That keeps the statement short enough for psycopg to keep its conversion: one over
        # 4,096 bytes it parses anew on every execution, a tenth of this load's Python work (issue 15).
        first = number == 0
        filled = {place: type_coerce(column, _TYPES[place[0]]) if first else column
                  for place, (_, column) in zip(places[kind], columns, strict=True)}
        positions[kind] = [slot[place] for place in places[kind]]
        values = [filled.get(place, cast(null(), _TYPES[place[0]]) if first else _NULL) for place in layout]
        head = literal_column(str(number), Integer())
        part = _select(kind, [(None, head), *((None, v) for v in values)], criteria)
        selects.append(part if first else part.set_label_style(LABEL_STYLE_NONE))
    return union_all(*selects), positions


_NULL = literal_column("NULL")


def _places(columns: list) -> list[tuple]:
    """(slot type, n): each column is the n-th of its type in its part."""
    used, places = defaultdict(int), []
    for type_, _ in columns:
        places.append((type_, used[type_]))
        used[type_] += 1
    return places


class _Plan(NamedTuple):
    """The statement of a one-statement load, and where each kind's values sit in its rows."""

    kinds: tuple[str, ...]
    union: object
    positions: dict


def _plan(where) -> _Plan:
    union, positions = _one_statement(_parts(where, True, ""))
    # Each kind's rows in id order (their second value; a course's is its participant).
    return _Plan(tuple(positions), union.order_by(literal_column("1"), literal_column("3")), positions)


@lru_cache(maxsize=8)
def _plan_by(key: str) -> _Plan:
    """The plans of the per-request loads, built once (building the UNION costs more than running
    it); `:key` is the course or participant id."""
    where = {"course": (Course.id == bindparam("key"),),
             "participant": (Course.participant_id == bindparam("key"), course_not_voided())}[key]
    return _plan(where)


def _bulk_selects(where, dialect: str, whole_study: bool) -> dict:
    """kind → select of the bulk form, one per kind of fact: each course's rows together (in id
    order, the order of the one-statement form), so they are grouped as they arrive."""
    if whole_study:  # only the courses' select depends on `where`: the others are built once
        return {**_whole_study_facts(dialect), "course": _select("course", _COURSE_COLUMNS, where)}
    return _ordered(_parts(where, False, dialect))


def _ordered(parts: dict) -> dict:
    selects = {}
    for kind, (columns, criteria, order) in parts.items():
        statement = _select(kind, columns, criteria)
        selects[kind] = statement if order is None else statement.order_by(columns[0][1], order)
    return selects


@lru_cache(maxsize=4)
def _whole_study_facts(dialect: str) -> dict:
    selects = _ordered(_parts((), False, dialect, whole_study=True))
    del selects["course"]
    return selects


def load_records(session: Session, *where, log_details: bool = True,
                 whole_study: bool = False) -> dict[int, CourseRecord]:
    """Course id → record, for the courses matching `where` (criteria on Course and Participant).

    `log_details=False` is the bulk form (thousands of courses): it loads only each current log's
    outcome (what a day's status depends on), not what a page shows of it (times, source, fasting,
    reason), and sends one statement per kind of fact instead of one in all. `whole_study` (bulk
    form only) says `where` leaves out few courses, if any (voided ones): the facts of every course
    are read, in one scan per kind, and those of the courses left out dropped. Without planner
    statistics both databases read a fact table that way several times faster than they look up
    each course's facts in turn (bench/dashboard.py)."""
    session.flush()  # Core reads below do not autoflush
    conn = session.connection()
    if not log_details:
        return _bulk_records(conn, _bulk_selects(where, conn.dialect.name, whole_study))
    if whole_study:
        raise ValueError("whole_study is a form of the bulk load (log_details=False)")
    return _records(conn, _plan(where), {})


def load_record(session: Session, course_id: int) -> CourseRecord | None:
    """The record of one course (one statement), or None."""
    session.flush()
    return _records(session.connection(), _plan_by("course"), {"key": course_id}).get(course_id)


def participant_records(session: Session, participant_id: int) -> dict[int, CourseRecord]:
    """Course id → record of a participant's courses, voided ones aside (one statement)."""
    session.flush()
    return _records(session.connection(), _plan_by("participant"), {"key": participant_id})


_new = tuple.__new__  # a named tuple built in C, not through its Python-level __new__


def _records(conn, plan: _Plan, params: dict) -> dict[int, CourseRecord]:
    """The records of a one-statement load: every fact with its details."""
    courses: list = []
    decisions: dict[int, list] = defaultdict(list)
    signed: dict[int, list] = defaultdict(list)
    logs: dict[int, dict[int, LogFact]] = defaultdict(dict)
    heads: dict[int, dict[int, LogFact]] = defaultdict(dict)
    labs: dict[int, list] = defaultdict(list)
    reports: dict[int, list] = defaultdict(list)
    pauses: dict[int, list] = defaultdict(list)
    kinds, positions = plan.kinds, plan.positions
    for row in conn.execute(plan.union, params):
        kind = kinds[row[0]]
        course_id, *fact = (row[i] for i in positions[kind])
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
        elif kind == "lab":
            labs[course_id].append(LabFact(*fact))
        elif kind == "symptom":
            reports[course_id].append(SymptomFact(*fact))
        else:
            pauses[course_id].append(PauseFact(*fact))
    facts = [{cid: tuple(items) for cid, items in kind.items()} for kind in (decisions, signed, labs, reports, pauses)]
    return {course[0]: _record(course, *facts, {day: log.outcome for day, log in logs.get(course[0], {}).items()},
                               logs.get(course[0], {}), heads.get(course[0], {}))
            for course in courses}


def _grouped(conn, statement):
    """(course id, its rows) for each course of `statement`, whose rows come grouped by course;
    fetched in batches, so tens of thousands of rows never live at once."""
    return groupby(chain.from_iterable(conn.execute(statement).partitions(1000)), _course_of)


_course_of = itemgetter(0)
# Each fact built in C from its row (a named tuple's own __new__ is a Python call).
_decision = partial(_new, DecisionFact)
_decision_values = itemgetter(1, 2, 3, 4, 5)
_day_and_mg = itemgetter(2, 3)
_lab = partial(_new, LabFact)
_lab_values = itemgetter(1, 2, 3)


def _bulk_records(conn, selects: dict) -> dict[int, CourseRecord]:
    """The records of a bulk load."""
    decisions, signed, prescriptions = {}, {}, {}
    for course_id, rows in _grouped(conn, selects["decision"]):
        rows = list(rows)
        signed[course_id] = tuple(map(_decision, map(_decision_values, rows)))
        pairs = tuple(map(_day_and_mg, rows))
        # Courses share a handful of prescriptions: one tuple each (and a quick key for doses' cache).
        decisions[course_id] = prescriptions.setdefault(pairs, pairs)
    labs = {course_id: tuple(map(_lab, map(_lab_values, rows))) for course_id, rows in
            _grouped(conn, selects["lab"])}
    reports = {course_id: tuple(SymptomFact(*row[1:]) for row in rows) for course_id, rows in
               _grouped(conn, selects["symptom"])}
    pauses = {course_id: tuple(PauseFact(*row[1:]) for row in rows) for course_id, rows in
              _grouped(conn, selects["pause"])}
    outcome_of = _OUTCOME_CODES.__getitem__
    outcomes, shared = {}, {}
    for course_id, days, codes in chain.from_iterable(conn.execute(selects["packed"]).partitions(1000)):
        # Most courses log the same days the same way: one (read-only) dict for each way, as for
        # the prescriptions; a grid of 8,000 courses builds a few hundred instead of 8,000.
        by_day = shared.get((days, codes))
        if by_day is None:
            by_day = shared[days, codes] = dict(zip(map(int, days.split(",")), map(outcome_of, codes), strict=True))
        outcomes[course_id] = by_day
    return {course[0]: _record(course, decisions, signed, labs, reports, pauses,
                               outcomes.get(course[0], _NONE), None, None)
            for course in chain.from_iterable(conn.execute(selects["course"]).partitions(1000))}


def _record(course, decisions: dict, signed: dict, labs: dict, reports: dict, pauses: dict,
            outcomes: dict[int, str], logs: dict | None, heads: dict | None) -> CourseRecord:
    """A course row and its facts (course id → tuple of facts) as a record."""
    (cid, pid, site_id, cycle, day1, mg, tz, status, ended_at, reminder, number, cohort, site_code, last_day,
     quiet_start, quiet_end) = course
    # Positional (in _FIELDS' order): a call with 24 keywords costs three times as much, once per course.
    return CourseRecord(
        cid, pid, site_id, cycle, day1, mg, tz, status, ended_at, _reminder_time(reminder), number, cohort,
        site_code, decisions.get(cid, ()), signed.get(cid, ()), outcomes, logs, heads, labs.get(cid, ()),
        reports.get(cid, ()), pauses.get(cid, ()), last_day, quiet_start, quiet_end)


_FIELDS = ("course_id", "participant_id", "site_id", "cycle", "day1", "starting_dose_mg", "tz", "participant_status",
           "ended_at", "reminder_time", "study_number", "cohort", "site_code", "decisions", "signed", "outcomes",
           "logs", "heads", "labs", "symptoms", "pauses", "last_day", "quiet_start", "quiet_end")
if tuple(field.name for field in fields(CourseRecord)) != _FIELDS:
    raise ImportError("CourseRecord's fields changed: update _record, which passes them by position")
