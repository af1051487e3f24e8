"""The adherence dashboard: participants × course days, adherence %, and blood draws due.

Every figure is read from the course records (diary/course_record.py) that one loader builds with a
fixed number of queries; a day's cell, a course's percentage and the headline figures are the same
statuses the participant's today page and the scheduler read. The headline figures count exactly
the rows the filters show.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

from sqlalchemy import and_, func, select
from sqlmodel import Session

from diary import course_record, study
from diary.course_record import CourseRecord
from diary.models import Course, Flag, Participant, course_not_voided
from diary.services.course_records import load_records
from diary.study import StudyConfig

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
    record: CourseRecord
    state: str
    cells: list[str]
    counts: course_record.Counts
    open_flags: int
    cfg: StudyConfig
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
    def rate(self) -> Rate:
        return Rate(self.counts.taken, self.counts.counted)

    @property
    def missed(self) -> int:
        return self.counts.missed

    @property
    def nadir(self) -> tuple[float, int] | None:
        """The course's lowest PLT after day 1 and its CTCAE grade."""
        return study.nadir((lab.plt for lab in self.record.labs if lab.day > 0), self.cfg)

    @property
    def problem(self) -> bool:
        return bool(self.open_flags or self.missed or self.overdue_draws)

    def sort_key(self) -> tuple:
        # Problems first (flags, then missed doses, then overdue draws), then the lowest adherence.
        c = self.counts
        return (not self.open_flags, -c.missed, -len(self.overdue_draws),
                c.taken / c.counted if c.counted else 2, self.study_number, self.cycle_number)


@dataclass
class Grid:
    rows: list[CourseRow]
    overall: Rate
    by_cohort: dict[str, Rate]
    by_site: dict[str, Rate]
    overdue_draws: list[tuple[CourseRow, int, date]]
    upcoming_draws: list[tuple[CourseRow, int, date]]
    course_length: int


def course_state(record: CourseRecord, today: date, cfg: StudyConfig) -> str:
    if today < record.day1:
        return "upcoming"
    return "finished" if today > record.day1 + timedelta(days=cfg.course_length_days - 1) else "running"


def _state_bounds(state: str | None, now: datetime, cfg: StudyConfig) -> list:
    """SQL bounds on day 1 that keep every course in `state` (course_state decides exactly, per
    participant zone): a local date is within a day of the UTC date, so the bounds have a day of
    slack either side. The default "running" view then loads one course per participant, not all."""
    if state is None:
        return []
    utc_today = now.astimezone(UTC).date()
    earliest, latest = utc_today - timedelta(days=1), utc_today + timedelta(days=1)
    length = timedelta(days=cfg.course_length_days - 1)
    if state == "upcoming":
        return [Course.start_date > earliest]
    if state == "finished":
        return [Course.start_date < latest - length]
    return [Course.start_date <= latest, Course.start_date >= earliest - length]


def build_grid(session: Session, cfg: StudyConfig, now: datetime, site_ids: frozenset[int] | None,
               filters: Filters = Filters(), lab_grace_hours: float = 12.0) -> Grid:
    """The dashboard for the sites in `site_ids` (None: every site) at instant `now`."""
    scope = []
    if site_ids is not None:
        scope.append(Participant.site_id.in_(sorted(site_ids)))
    if filters.site_id is not None:
        scope.append(Participant.site_id == filters.site_id)
    if filters.cohort:
        scope.append(Participant.cohort == filters.cohort)
    # A course entered in error (voided) is in the audit trail and the export, not in adherence.
    records = load_records(session, *scope, course_not_voided(), *_state_bounds(filters.course_state, now, cfg),
                           log_details=False)
    participant_ids = select(Participant.id).where(*scope).scalar_subquery()
    flags = dict(session.connection().execute(
        select(Flag.participant_id, func.count()).where(
            and_(Flag.participant_id.in_(participant_ids), Flag.acknowledged_at.is_(None)))
        .group_by(Flag.participant_id)).all())

    grid = Grid(rows=[], overall=Rate(), by_cohort=defaultdict(Rate), by_site=defaultdict(Rate),
                overdue_draws=[], upcoming_draws=[], course_length=cfg.course_length_days)
    today_in: dict[str, date] = {}
    for record in records.values():
        today = today_in.get(record.tz)
        if today is None:
            today = today_in[record.tz] = study.local_date(now, record.tz)
        state = course_state(record, today, cfg)
        open_flags = flags.get(record.participant_id, 0)
        if (filters.course_state and state != filters.course_state) or (filters.flagged_only and not open_flags):
            continue
        statuses = course_record.day_statuses(record, cfg, now)
        counts = course_record.adherence(statuses)
        # DoseStatus is a str enum: its members are the cells' codes.
        row = CourseRow(record, state, statuses, counts, open_flags, cfg)
        _draws(row, now, today, cfg, lab_grace_hours)
        grid.rows.append(row)
        # The headline counts exactly what the filters show (issue 9, problem 6).
        grid.overall.add(counts.taken, counts.counted)
        grid.by_cohort[record.cohort].add(counts.taken, counts.counted)
        grid.by_site[record.site_code].add(counts.taken, counts.counted)
    grid.rows.sort(key=CourseRow.sort_key)
    for row in grid.rows:
        grid.overdue_draws.extend((row, day, on) for day, on in row.overdue_draws)
        grid.upcoming_draws.extend((row, day, on) for day, on in row.upcoming_draws)
    grid.overdue_draws.sort(key=lambda item: item[2])
    grid.upcoming_draws.sort(key=lambda item: item[2])
    return grid


def _draws(row: CourseRow, now: datetime, today: date, cfg: StudyConfig, grace_hours: float) -> None:
    record = row.record
    # The lists show a course while it runs and for one course length after: older gaps are history.
    if row.state == "upcoming" or today > record.day1 + timedelta(days=2 * cfg.course_length_days - 1):
        return
    state = course_record.draw_state(record, cfg, now, grace_hours, UPCOMING_DRAW_DAYS)
    if state.overdue:
        row.overdue_draws = tuple((day, record.day1 + timedelta(days=day - 1)) for day in state.overdue)
    if state.pending:
        row.upcoming_draws = tuple((day, record.day1 + timedelta(days=day - 1)) for day in state.pending)
