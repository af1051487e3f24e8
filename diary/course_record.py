"""One course record, and every fact about a course as a pure function of it (DESIGN §3).

A `CourseRecord` is a course with its signed decisions, its *current* dose logs, blood counts and
symptom reports, the participant's zone, status and end, and its clinical-review pauses. One loader
builds it (diary/services/course_records.py); the today page, offline sync, SMS replies, the
scheduler, the adherence grid and the export all read a day's status, missed days, draws and
reminders from the functions here, so they cannot disagree. No Flask, no database; `now` is an
argument.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from diary import study
from diary.study import DoseStatus, StudyConfig

# -------------------------------------------------------------------------------------------------
# The "current row" rule, Python form (the SQL form is services.course_records.is_current).


def current(rows: Iterable, *, id_of=lambda r: r.id, supersedes_of=lambda r: r.supersedes_id) -> list:
    """The rows nothing supersedes, in their given order (a correction replaces what it corrects)."""
    rows = list(rows)
    superseded = {supersedes_of(r) for r in rows}
    return [r for r in rows if id_of(r) not in superseded]


# -------------------------------------------------------------------------------------------------
# The record


@dataclass(frozen=True, slots=True)
class LogFact:
    """A current dose log (a retraction leaves its day without one)."""

    id: int
    day: int
    outcome: str  # taken | not_taken
    taken_at: datetime | None = None
    source: str = "participant"
    received_at: datetime | None = None
    fasting: bool | None = None
    reason: str | None = None

    def __post_init__(self) -> None:
        if self.outcome not in _LOGGED:
            raise ValueError(f"unknown dose outcome {self.outcome!r} (a current log is taken or not_taken)")


@dataclass(frozen=True, slots=True)
class LabFact:
    id: int
    day: int
    plt: float


@dataclass(frozen=True, slots=True)
class SymptomFact:
    id: int
    danger: bool
    received_at: datetime


@dataclass(frozen=True, slots=True)
class PauseFact:
    """A clinical-review pause: open from `opened_at` until staff close it."""

    id: int
    opened_at: datetime
    closed_at: datetime | None = None
    cause: str = "danger_symptom"  # danger_symptom | critical_plt


@dataclass(frozen=True, slots=True)
class CourseRecord:
    course_id: int
    participant_id: int
    site_id: int
    cycle: int
    day1: date
    starting_dose_mg: float
    tz: str
    participant_status: str = "active"
    ended_at: datetime | None = None
    reminder_time: time = time(8, 0)
    study_number: str = ""
    cohort: str = "primary"
    site_code: str = ""
    decisions: tuple[tuple[int, float], ...] = ()  # (effective day, mg), in signing order
    logs: dict[int, LogFact] | None = None  # current log per course day
    labs: tuple[LabFact, ...] = ()  # current blood counts
    symptoms: tuple[SymptomFact, ...] = ()  # current symptom reports filed on this course
    pauses: tuple[PauseFact, ...] = ()

    @property
    def open_pause(self) -> PauseFact | None:
        """The review pause still open, if any (at most one: a unique index says so)."""
        for pause in self.pauses:
            if pause.closed_at is None:
                return pause
        return None

    def log(self, day: int) -> LogFact | None:
        return self.logs.get(day) if self.logs else None


# -------------------------------------------------------------------------------------------------
# Dose days


def doses(record: CourseRecord, cfg: StudyConfig) -> tuple[float, ...]:
    """Prescribed mg of days 1..n: the last-signed decision in effect by then (0 = held)."""
    length = cfg.course_length_days
    if not record.decisions:
        return (record.starting_dose_mg,) * length
    return tuple(study.dose_for_day(day, record.starting_dose_mg, record.decisions)
                 for day in range(1, length + 1))


def ended_on(record: CourseRecord) -> date | None:
    """The participant's last local date in the study, if they withdrew or completed."""
    return study.local_date(record.ended_at, record.tz) if record.ended_at is not None else None


def paused_days(record: CourseRecord, cfg: StudyConfig) -> frozenset[int]:
    """Course days a review pause covers: every day still open for logging when it opened (so
    yesterday's late card does not invite a dose either), up to, not including, the local date it
    closed (a pause closed in the morning leaves that day's dose due)."""
    if not record.pauses:
        return frozenset()
    days = set()
    length = cfg.course_length_days
    for pause in record.pauses:
        opened = pause.opened_at.astimezone(ZoneInfo(record.tz))
        # The first day whose logging cutoff is after the opening instant.
        first_date = opened.date() - timedelta(days=cfg.cutoff_days_after)
        if opened.time() >= cfg.cutoff_time:
            first_date += timedelta(days=1)
        first = (first_date - record.day1).days + 1
        last = length if pause.closed_at is None else \
            (study.local_date(pause.closed_at, record.tz) - record.day1).days
        days.update(range(max(first, 1), min(last, length) + 1))
    return frozenset(days)


_LOGGED = {"taken": DoseStatus.TAKEN, "not_taken": DoseStatus.NOT_TAKEN}


def day_statuses(record: CourseRecord, cfg: StudyConfig, now: datetime) -> list[DoseStatus]:
    """Every day's status at `now` — the one definition every page, job and figure reads.

    ended (after the participant's end) › held (0 mg) › what was logged › paused for review ›
    upcoming / due / missed by the participant's local calendar and the logging cutoff."""
    length, grace = cfg.course_length_days, cfg.cutoff_days_after
    mg = doses(record, cfg)
    elapsed = (study.local_date(now, record.tz) - record.day1).days  # today's offset from day 1
    last = ended_on(record)
    last_index = (last - record.day1).days if last is not None else length
    paused = paused_days(record, cfg)
    logs = record.logs or {}
    statuses = []
    for index in range(length):
        day = index + 1
        if index > last_index:
            statuses.append(DoseStatus.ENDED)
            continue
        if mg[index] == 0:
            statuses.append(DoseStatus.HELD)
            continue
        log = logs.get(day)
        if log is not None:
            statuses.append(_LOGGED[log.outcome])
            continue
        if day in paused:
            statuses.append(DoseStatus.PAUSED)
            continue
        late = elapsed - index  # days since this day began, in local dates
        if late < 0:
            statuses.append(DoseStatus.UPCOMING)
        elif late > grace:
            statuses.append(DoseStatus.MISSED)
        elif late < grace:
            statuses.append(DoseStatus.DUE)
        else:
            statuses.append(DoseStatus.MISSED if now >= cutoff(record, day, cfg) else DoseStatus.DUE)
    return statuses


def cutoff(record: CourseRecord, day: int, cfg: StudyConfig) -> datetime:
    """The instant after which only staff may record day `day` (DESIGN §3)."""
    return study.logging_cutoff(record.day1, day, record.tz, cfg)


@dataclass(frozen=True, slots=True)
class CourseDay:
    """One dose day as pages show it."""

    day: int
    date: date
    dose_mg: float
    tablets: int
    status: DoseStatus
    draw_day: bool
    log: LogFact | None
    may_log: bool  # the participant may still record it themselves
    cutoff: datetime


def course_days(record: CourseRecord, cfg: StudyConfig, now: datetime) -> list[CourseDay]:
    statuses = day_statuses(record, cfg, now)
    mg = doses(record, cfg)
    today = study.local_date(now, record.tz)
    days = []
    for index, status in enumerate(statuses):
        day = index + 1
        on = record.day1 + timedelta(days=index)
        limit = cutoff(record, day, cfg)
        days.append(CourseDay(
            day=day, date=on, dose_mg=mg[index], tablets=study.tablet_count(mg[index], cfg), status=status,
            draw_day=study.is_draw_day(day, cfg), log=record.log(day),
            may_log=mg[index] > 0 and status is not DoseStatus.ENDED and today >= on and now < limit,
            cutoff=limit,
        ))
    return days


def missed_days(record: CourseRecord, cfg: StudyConfig, now: datetime) -> list[int]:
    """Prescribed days nothing was logged for by the cutoff (paused and held days never are)."""
    return [i + 1 for i, s in enumerate(day_statuses(record, cfg, now)) if s is DoseStatus.MISSED]


@dataclass(frozen=True, slots=True)
class Counts:
    """Adherence of a course: taken ÷ (taken + not taken + missed); held, paused, coming and
    ended days are not counted."""

    taken: int = 0
    not_taken: int = 0
    missed: int = 0
    paused: int = 0

    @property
    def counted(self) -> int:
        return self.taken + self.not_taken + self.missed


def adherence(statuses: list[DoseStatus]) -> Counts:
    return Counts(statuses.count(DoseStatus.TAKEN), statuses.count(DoseStatus.NOT_TAKEN),
                  statuses.count(DoseStatus.MISSED), statuses.count(DoseStatus.PAUSED))


# -------------------------------------------------------------------------------------------------
# Blood draws: one window rule (study.toml draw_window_days) for the grid, the flag and reminders


def draw_done(record: CourseRecord, draw_day: int, cfg: StudyConfig) -> bool:
    """Whether a current blood count falls within the configured window around `draw_day`."""
    window = cfg.draw_window_days
    return any(lab.day > 0 and abs(lab.day - draw_day) <= window for lab in record.labs)


def draw_overdue_from(record: CourseRecord, draw_day: int, cfg: StudyConfig, grace_hours: float) -> datetime:
    """When a missing count becomes overdue: `grace_hours` after the last day of its window."""
    window_end = record.day1 + timedelta(days=draw_day - 1 + cfg.draw_window_days + 1)
    return study.local_instant(window_end, time(0, 0), record.tz) + timedelta(hours=grace_hours)


def overdue_draws(record: CourseRecord, cfg: StudyConfig, now: datetime, grace_hours: float) -> list[int]:
    """Planned draw days of an active participant whose count is still missing when overdue."""
    if record.participant_status != "active":
        return []
    last = ended_on(record)
    return [day for day in cfg.draw_days
            if (last is None or record.day1 + timedelta(days=day - 1) <= last)
            and not draw_done(record, day, cfg) and draw_overdue_from(record, day, cfg, grace_hours) <= now]


def pending_draws(record: CourseRecord, cfg: StudyConfig, now: datetime, grace_hours: float,
                  ahead_days: int) -> list[int]:
    """Draw days not done, not overdue yet, within `ahead_days` of today: the grid's "coming up"."""
    if record.participant_status != "active":
        return []
    today = study.local_date(now, record.tz)
    return [day for day in cfg.draw_days
            if not draw_done(record, day, cfg)
            and record.day1 + timedelta(days=day - 1) <= today + timedelta(days=ahead_days)
            and draw_overdue_from(record, day, cfg, grace_hours) > now
            and record.day1 + timedelta(days=day - 1 + cfg.draw_window_days) >= today]


# -------------------------------------------------------------------------------------------------
# Which day a log belongs to (DESIGN §3), for every channel


@dataclass(frozen=True, slots=True)
class Ask:
    """Two days are open and nothing says which: ask, naming both."""

    earlier: int
    later: int


def day_for_log(record: CourseRecord, cfg: StudyConfig, now: datetime, *, named_day: int | None = None,
                asked_day: int | None = None) -> int | Ask | None:
    """The course day a log without a stated day belongs to: the day the participant names; else the
    day the latest reminder or follow-up asked about, if still open; else the only open day
    (yesterday before its cutoff, or today); `Ask` when both are open; None when none is."""
    days = course_days(record, cfg, now)

    def open_(day: int | None) -> bool:
        # Open: the participant may still record it and nothing is recorded yet.
        return day is not None and 1 <= day <= len(days) and days[day - 1].may_log and \
            days[day - 1].log is None

    if named_day is not None:
        return named_day if open_(named_day) else None
    if open_(asked_day):
        return asked_day
    today = (study.local_date(now, record.tz) - record.day1).days + 1
    candidates = [d for d in (today - 1, today) if open_(d)]
    if len(candidates) == 2:
        return Ask(*candidates)
    return candidates[0] if candidates else None
