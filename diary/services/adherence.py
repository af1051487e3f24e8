"""The adherence dashboard: participants × course days, adherence %, and blood draws due.

Every figure is read from the course records (diary/course_record.py) that one loader builds with a
fixed number of queries; a day's cell, a course's percentage and the headline figures are the same
statuses the participant's today page and the scheduler read. The headline figures count exactly
the rows the filters show.

Two ways in: `build_grid`, every course the filters keep (the headline, the draw lists, the problem
list, the participant report), and `grid_page`, one page of rows that loads only that page's
courses (what the staff page shows first, at the same cost at any study size).
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from itertools import takewhile
from operator import attrgetter

from sqlalchemy import and_, exists, false, func, or_, select
from sqlmodel import Session
from sqlmodel import select as sqlmodel_select

from diary import course_record, study
from diary.course_record import CourseRecord
from diary.models import Course, DoseDecision, Flag, LabResult, Participant, course_not_voided
from diary.services.course_records import is_current, load_records
from diary.study import DoseStatus, StudyConfig

COURSE_STATES = ("running", "finished", "upcoming")
UPCOMING_DRAW_DAYS = 2


@dataclass(frozen=True)
class Filters:
    cohort: str | None = None
    course_state: str | None = None  # running | finished | upcoming | None (all)
    flagged_only: bool = False
    site_id: int | None = None


@dataclass
class Rate:
    taken: int = 0
    counted: int = 0

    def add(self, taken: int, counted: int) -> None:
        self.taken += taken
        self.counted += counted

    @property
    def percent(self) -> float | None:
        return round(100 * self.taken / self.counted, 1) if self.counted else None


@dataclass(slots=True)
class CourseRow:
    """One course as the grid shows it. Its day statuses are not kept: a whole grid has thousands of
    rows, and every list kept is one more object the cyclic collector walks on each full collection
    (issue 9, item 7). `cells` derives them again, with the same function, for the rows a page shows."""

    record: CourseRecord
    state: str
    taken: int
    not_taken: int
    missed: int
    paused: int
    open_flags: int
    cfg: StudyConfig
    now: datetime
    overdue_draws: tuple[tuple[int, date], ...] = ()
    upcoming_draws: tuple[tuple[int, date], ...] = ()

    participant_id = property(lambda self: self.record.participant_id)
    study_number = property(lambda self: self.record.study_number)
    site_code = property(lambda self: self.record.site_code)
    cohort = property(lambda self: self.record.cohort)
    course_id = property(lambda self: self.record.course_id)
    cycle_number = property(lambda self: self.record.cycle)
    start_date = property(lambda self: self.record.day1)

    @property
    def cells(self) -> list[DoseStatus]:
        # DoseStatus is a str enum: its members are the cells' codes.
        return course_record.day_statuses(self.record, self.cfg, self.now)

    @property
    def counts(self) -> course_record.Counts:
        return course_record.Counts(self.taken, self.not_taken, self.missed, self.paused)

    @property
    def rate(self) -> Rate:
        return Rate(self.taken, self.taken + self.not_taken + self.missed)

    @property
    def nadir(self) -> tuple[float, int] | None:
        """The course's lowest PLT after day 1 and its CTCAE grade."""
        return study.nadir((lab.plt for lab in self.record.labs if lab.day > 0), self.cfg)

    @property
    def problem(self) -> bool:
        return bool(self.open_flags or self.missed or self.overdue_draws)


@dataclass
class Grid:
    rows: list[CourseRow]  # problems first: open flags, then missed doses, then overdue draws, then low adherence
    overall: Rate
    by_cohort: dict[str, Rate]
    by_site: dict[str, Rate]
    overdue_draws: list[tuple[CourseRow, int, date]]
    upcoming_draws: list[tuple[CourseRow, int, date]]
    course_length: int

    @property
    def problems(self) -> list[CourseRow]:
        """The rows that need a look (an open flag, a missed dose or an overdue draw), in that order."""
        return list(takewhile(attrgetter("problem"), self.rows))


@dataclass
class GridPage:
    """One page of the grid in a fixed order (by study number and cycle). Only that page's courses
    are loaded and nothing counts them all, so it costs the same at any study size; how many
    courses the filters keep is the headline's (build_grid)."""

    rows: list[CourseRow]
    page: int
    has_next: bool
    course_length: int


def course_state(record: CourseRecord, today: date, cfg: StudyConfig) -> str:
    if today < record.day1:
        return "upcoming"
    return "finished" if today > record.day1 + timedelta(days=cfg.course_length_days - 1) else "running"


def day1_window(state: str, today: date, cfg: StudyConfig) -> tuple[date | None, date | None]:
    """The dates of day 1 (inclusive; None: open) of the courses `course_state` puts in `state` on
    the local date `today`: the same rule, as bounds a query can use."""
    length = timedelta(days=cfg.course_length_days - 1)
    if state == "upcoming":
        return today + timedelta(days=1), None
    if state == "finished":
        return None, today - length - timedelta(days=1)
    return today - length, today


def _scope(site_ids: frozenset[int] | None, filters: Filters) -> list:
    scope = []
    if site_ids is not None:
        scope.append(Participant.site_id.in_(sorted(site_ids)))
    if filters.site_id is not None:
        scope.append(Participant.site_id == filters.site_id)
    if filters.cohort:
        scope.append(Participant.cohort == filters.cohort)
    return scope


def _state_criteria(conn, scope: list, state: str | None, now: datetime, cfg: StudyConfig) -> list:
    """SQL that keeps exactly the courses in `state`: each participant's zone has its own local
    date, so one bound per zone in use (a handful; one cheap query finds them)."""
    if state is None:
        return []
    clauses = []
    for tz in conn.execute(select(Participant.timezone).where(*scope).distinct()).scalars():
        earliest, latest = day1_window(state, study.local_date(now, tz), cfg)
        bounds = [Participant.timezone == tz]
        if earliest is not None:
            bounds.append(Course.start_date >= earliest)
        if latest is not None:
            bounds.append(Course.start_date <= latest)
        clauses.append(and_(*bounds))
    return [or_(*clauses)] if clauses else [false()]


def _kept(session: Session, scope: list, filters: Filters, now: datetime, cfg: StudyConfig):
    """The connection, and the SQL criteria of the courses the filters keep: in `scope`, not voided
    (a course entered in error is in the audit trail and the export, not in adherence), in the
    state asked for, and with an open flag if only flagged ones are asked for."""
    session.flush()
    conn = session.connection()
    where = [*scope, course_not_voided(), *_state_criteria(conn, scope, filters.course_state, now, cfg)]
    if filters.flagged_only:
        where.append(_has_open_flag())
    return conn, where


def _has_open_flag():
    return exists().where(Flag.participant_id == Participant.id, Flag.acknowledged_at.is_(None))


def _open_flags(conn, participants) -> dict[int, int]:
    return dict(conn.execute(
        select(Flag.participant_id, func.count()).where(
            Flag.participant_id.in_(participants), Flag.acknowledged_at.is_(None))
        .group_by(Flag.participant_id)).all())


def _row(record: CourseRecord, state: str, today: date, open_flags: int, cfg: StudyConfig, now: datetime,
         grace_hours: float) -> CourseRow:
    # The day statuses live only while their counts are taken (CourseRow.cells derives them again).
    taken, not_taken, missed, paused = course_record.adherence(course_record.day_statuses(record, cfg, now))
    row = CourseRow(record, state, taken, not_taken, missed, paused, open_flags, cfg, now)
    # The draw lists show a course while it runs and for one course length after: older gaps are history.
    if state != "upcoming" and (today - record.day1).days < 2 * cfg.course_length_days:
        overdue, pending = course_record.draw_state(record, cfg, now, grace_hours, UPCOMING_DRAW_DAYS)
        if overdue:
            row.overdue_draws = _dated(record.day1, overdue)
        if pending:
            row.upcoming_draws = _dated(record.day1, pending)
    return row


def _dated(day1: date, days: tuple[int, ...]) -> tuple[tuple[int, date], ...]:
    return tuple((day, day1 + timedelta(days=day - 1)) for day in days)


def build_grid(session: Session, cfg: StudyConfig, now: datetime, site_ids: frozenset[int] | None,
               filters: Filters = Filters(), lab_grace_hours: float = 12.0) -> Grid:
    """Every course the filters keep, for the sites in `site_ids` (None: every site) at instant `now`:
    the headline figures, the draw lists and the rows, problems first."""
    scope = _scope(site_ids, filters)
    conn, where = _kept(session, scope, filters, now, cfg)
    # Every course but the voided: the loader reads each kind of fact in one scan.
    whole_study = not (scope or filters.course_state or filters.flagged_only)
    records = load_records(session, *where, log_details=False, whole_study=whole_study)
    flags = _open_flags(conn, select(Participant.id).where(*scope).scalar_subquery())

    rows: list[CourseRow] = []
    keys: list[tuple] = []
    tally: dict[tuple[str, str], list[int]] = {}
    today_in: dict[str, date] = {}
    only_state, flagged_only = filters.course_state, filters.flagged_only
    for record in records.values():
        today = today_in.get(record.tz)
        if today is None:
            today = today_in[record.tz] = study.local_date(now, record.tz)
        state = course_state(record, today, cfg)
        open_flags = flags.get(record.participant_id, 0)
        if (only_state and state != only_state) or (flagged_only and not open_flags):
            continue  # the SQL above keeps exactly these; course_state stays the word on it
        row = _row(record, state, today, open_flags, cfg, now, lab_grace_hours)
        rows.append(row)
        taken = row.taken
        counted = taken + row.not_taken + row.missed
        # Problems first (flags, then missed doses, then overdue draws), then the lowest adherence.
        keys.append((not open_flags, -row.missed, -len(row.overdue_draws),
                     taken / counted if counted else 2, record.study_number, record.cycle))
        # The headline counts exactly what the filters show (issue 9, problem 6).
        total = tally.get((record.site_code, record.cohort))
        if total is None:
            tally[record.site_code, record.cohort] = [taken, counted]
        else:
            total[0] += taken
            total[1] += counted
    grid = Grid(rows=[rows[i] for i in sorted(range(len(rows)), key=keys.__getitem__)], overall=Rate(),
                by_cohort=defaultdict(Rate), by_site=defaultdict(Rate), overdue_draws=[], upcoming_draws=[],
                course_length=cfg.course_length_days)
    for (site_code, cohort), (taken, counted) in tally.items():
        grid.overall.add(taken, counted)
        grid.by_site[site_code].add(taken, counted)
        grid.by_cohort[cohort].add(taken, counted)
    for row in grid.rows:
        if row.overdue_draws:
            grid.overdue_draws.extend((row, day, on) for day, on in row.overdue_draws)
        if row.upcoming_draws:
            grid.upcoming_draws.extend((row, day, on) for day, on in row.upcoming_draws)
    grid.overdue_draws.sort(key=lambda item: item[2])
    grid.upcoming_draws.sort(key=lambda item: item[2])
    return grid


def grid_page(session: Session, cfg: StudyConfig, now: datetime, site_ids: frozenset[int] | None,
              filters: Filters = Filters(), page: int = 1, page_size: int = 100,
              lab_grace_hours: float = 12.0) -> GridPage:
    """Page `page` of the courses the filters keep, by study number and cycle (an order an index
    gives, so the database stops after the page). The filters are applied in SQL, exactly (the
    state by each zone's local date), so only the page's courses are loaded and their rows
    computed; the headline figures, which need every course, are build_grid's."""
    scope = _scope(site_ids, filters)
    conn, where = _kept(session, scope, filters, now, cfg)
    page = max(page, 1)
    # One row more than a page says whether there is a next one, without counting them all.
    ids = list(conn.execute(
        select(Course.id).join(Participant, Participant.id == Course.participant_id).where(*where)
        .order_by(Participant.study_number, Course.cycle_number, Course.id)
        .limit(page_size + 1).offset((page - 1) * page_size)).scalars())
    has_next, ids = len(ids) > page_size, ids[:page_size]
    rows = []
    if ids:
        # course_not_voided() again (the ids are of such courses): without it, PostgreSQL without
        # planner statistics (after an import or a restore) reads every dose log for one page.
        records = load_records(session, course_not_voided(), Course.id.in_(ids), log_details=False)
        flags = _open_flags(conn, sorted({record.participant_id for record in records.values()}))
        for course_id in ids:
            record = records[course_id]
            today = study.local_date(now, record.tz)
            rows.append(_row(record, course_state(record, today, cfg), today, flags.get(record.participant_id, 0),
                             cfg, now, lab_grace_hours))
    return GridPage(rows=rows, page=page, has_next=has_next, course_length=cfg.course_length_days)


def awaiting_decisions(session: Session, site_ids: frozenset[int] | None,
                       limit: int = 200) -> list[tuple[LabResult, Participant, Course]]:
    """Blood counts of active participants at the sites in `site_ids` (None: every site) that no
    signed decision refers to yet, oldest first (ix_dosedecision_lab_result_id makes it a lookup)."""
    query = (sqlmodel_select(LabResult, Participant, Course).join(Course, LabResult.course_id == Course.id)
             .join(Participant, Course.participant_id == Participant.id)
             .where(LabResult.course_day > 0, Participant.status == "active", is_current(LabResult),
                    ~exists().where(DoseDecision.lab_result_id == LabResult.id))
             .order_by(LabResult.entered_at))
    if site_ids is not None:
        query = query.where(Participant.site_id.in_(sorted(site_ids)))
    return list(session.exec(query.limit(limit)).all())
