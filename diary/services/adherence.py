"""The adherence dashboard: participants × course days, adherence %, and blood draws due.

Built with a fixed number of queries whatever the number of participants (each loads one table for
the whole scope through a sub-select, never one query per participant); the day statuses come from
study.course_statuses, the same rules as the participant's own calendar.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta

from sqlalchemy import and_, exists, func
from sqlalchemy.orm import aliased
from sqlmodel import Session, select

from diary import study
from diary.models import Course, DoseDecision, DoseLog, Flag, LabResult, Participant, Site
from diary.study import DoseStatus, StudyConfig

COURSE_STATES = ("running", "finished", "upcoming")
# Status of a day after the participant withdrew or completed: neither due nor missed.
ENDED = "ended"
COUNTED = frozenset({DoseStatus.TAKEN, DoseStatus.NOT_TAKEN, DoseStatus.MISSED})
# A draw entered one day early or late still covers the planned day (patients come when they can).
DRAW_WINDOW_DAYS = 1
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


@dataclass
class CourseRow:
    participant_id: int
    study_number: str
    site_code: str
    cohort: str
    participant_status: str
    course_id: int
    cycle_number: int
    start_date: date
    state: str
    cells: list[str]
    rate: Rate
    missed: int
    open_flags: int
    overdue_draws: list[tuple[int, date]] = field(default_factory=list)
    upcoming_draws: list[tuple[int, date]] = field(default_factory=list)
    nadir: tuple[float, int] | None = None

    @property
    def problem(self) -> bool:
        return bool(self.open_flags or self.missed or self.overdue_draws)

    def sort_key(self) -> tuple:
        # Problems first (flags, then missed doses, then overdue draws), then the lowest adherence.
        pct = self.rate.percent
        return (not self.open_flags, -self.missed, -len(self.overdue_draws),
                101 if pct is None else pct, self.study_number, self.cycle_number)


@dataclass
class Grid:
    rows: list[CourseRow]
    overall: Rate
    by_cohort: dict[str, Rate]
    by_site: dict[str, Rate]
    overdue_draws: list[tuple[CourseRow, int, date]]
    upcoming_draws: list[tuple[CourseRow, int, date]]
    course_length: int


def build_grid(session: Session, cfg: StudyConfig, now: datetime, site_ids: frozenset[int] | None,
               filters: Filters = Filters()) -> Grid:
    """The dashboard for the sites in `site_ids` (None: every site) at instant `now`."""
    scope = []
    if site_ids is not None:
        scope.append(Participant.site_id.in_(sorted(site_ids)))
    if filters.site_id is not None:
        scope.append(Participant.site_id == filters.site_id)
    if filters.cohort:
        scope.append(Participant.cohort == filters.cohort)
    participant_ids = select(Participant.id).where(*scope).scalar_subquery()
    course_ids = select(Course.id).where(Course.participant_id.in_(participant_ids)).scalar_subquery()

    # 1–7: one query per table, each bounded by the same scope.
    sites = dict(session.exec(select(Site.id, Site.code)).all())
    participants = {row[0]: row for row in session.exec(
        select(Participant.id, Participant.study_number, Participant.site_id, Participant.cohort,
               Participant.status, Participant.timezone, Participant.ended_at).where(*scope)).all()}
    courses = session.exec(
        select(Course.id, Course.participant_id, Course.cycle_number, Course.start_date,
               Course.starting_dose_mg).where(Course.participant_id.in_(participant_ids))).all()
    decisions: dict[int, list[tuple[int, float]]] = defaultdict(list)
    for course_id, effective_day, dose_mg in session.exec(
            select(DoseDecision.course_id, DoseDecision.effective_day, DoseDecision.dose_mg)
            .where(DoseDecision.course_id.in_(course_ids)).order_by(DoseDecision.id)):
        decisions[course_id].append((effective_day, dose_mg))
    newer = aliased(DoseLog)
    outcomes: dict[int, dict[int, str]] = defaultdict(dict)
    # Only the head of each day's chain: a superseded record is history, a retraction empties the day.
    for course_id, day, outcome in session.exec(
            select(DoseLog.course_id, DoseLog.course_day, DoseLog.outcome)
            .where(DoseLog.course_id.in_(course_ids),
                   ~exists().where(newer.supersedes_id == DoseLog.id),
                   DoseLog.outcome != "retracted").order_by(DoseLog.id)):
        outcomes[course_id][day] = outcome
    newer_lab = aliased(LabResult)
    labs: dict[int, list[tuple[int, float]]] = defaultdict(list)
    for course_id, day, plt in session.exec(
            select(LabResult.course_id, LabResult.course_day, LabResult.plt)
            .where(LabResult.course_id.in_(course_ids),
                   ~exists().where(newer_lab.supersedes_id == LabResult.id))):
        labs[course_id].append((day, plt))
    flags = dict(session.exec(
        select(Flag.participant_id, func.count()).where(
            and_(Flag.participant_id.in_(participant_ids), Flag.acknowledged_at.is_(None)))
        .group_by(Flag.participant_id)).all())

    grid = Grid(rows=[], overall=Rate(), by_cohort=defaultdict(Rate), by_site=defaultdict(Rate),
                overdue_draws=[], upcoming_draws=[], course_length=cfg.course_length_days)
    today_in: dict[str, date] = {}
    for course_id, participant_id, cycle, day1, starting_mg in courses:
        _, number, site_id, cohort, status, tz, ended_at = participants[participant_id]
        if tz not in today_in:
            today_in[tz] = study.local_date(now, tz)
        row = _course_row(cfg, now, today_in[tz], course_id, cycle, day1, starting_mg,
                          decisions.get(course_id, ()), outcomes.get(course_id, {}),
                          labs.get(course_id, ()), tz, ended_at, status)
        row.participant_id, row.study_number, row.site_code = participant_id, number, sites[site_id]
        row.cohort, row.participant_status = cohort, status
        row.open_flags = flags.get(participant_id, 0)
        if row.state != "upcoming":
            grid.overall.add(row.rate.taken, row.rate.counted)
            grid.by_cohort[cohort].add(row.rate.taken, row.rate.counted)
            grid.by_site[row.site_code].add(row.rate.taken, row.rate.counted)
        if filters.course_state and row.state != filters.course_state:
            continue
        if filters.flagged_only and not row.open_flags:
            continue
        grid.rows.append(row)
    grid.rows.sort(key=CourseRow.sort_key)
    for row in grid.rows:
        grid.overdue_draws.extend((row, day, on) for day, on in row.overdue_draws)
        grid.upcoming_draws.extend((row, day, on) for day, on in row.upcoming_draws)
    grid.overdue_draws.sort(key=lambda item: item[2])
    grid.upcoming_draws.sort(key=lambda item: item[2])
    return grid


def _course_row(cfg: StudyConfig, now: datetime, today: date, course_id: int, cycle: int, day1: date,
                starting_mg: float, decisions, outcomes, labs, tz: str, ended_at: datetime | None,
                status: str) -> CourseRow:
    length = cfg.course_length_days
    last = day1 + timedelta(days=length - 1)
    state = "upcoming" if today < day1 else "finished" if today > last else "running"
    statuses = study.course_statuses(day1, starting_mg, decisions, outcomes, now, tz, cfg)
    ended_on = study.local_date(ended_at, tz) if ended_at is not None else None
    cells, rate, missed = [], Rate(), 0
    for offset, day_status in enumerate(statuses):
        if ended_on is not None and day1 + timedelta(days=offset) > ended_on:
            cells.append(ENDED)
            continue
        cells.append(day_status.value)
        if day_status in COUNTED:
            rate.add(day_status is DoseStatus.TAKEN, 1)
            missed += day_status is DoseStatus.MISSED
    row = CourseRow(0, "", "", "", status, course_id, cycle, day1, state, cells, rate, missed, 0)
    if labs:
        row.nadir = study.nadir((plt for _, plt in labs), cfg)
    # Draws matter only for an active participant whose course is running or just finished.
    if status == "active" and state != "upcoming" and today <= last + timedelta(days=length):
        drawn = {day for day, _ in labs}
        for day in cfg.draw_days:
            on = day1 + timedelta(days=day - 1)
            if any(abs(day - d) <= DRAW_WINDOW_DAYS for d in drawn):
                continue
            if on < today:
                row.overdue_draws.append((day, on))
            elif on <= today + timedelta(days=UPCOMING_DRAW_DAYS):
                row.upcoming_draws.append((day, on))
    return row
