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
from dataclasses import dataclass, replace
from datetime import date, datetime, time, timedelta
from functools import lru_cache
from typing import NamedTuple, TypeVar
from zoneinfo import ZoneInfo

from diary import study
from diary.study import DoseStatus, StudyConfig

T = TypeVar("T")

# -------------------------------------------------------------------------------------------------
# The "current row" rule, Python form (the SQL form is services.course_records.is_current).


def current(rows: Iterable, *, id_of=lambda r: r.id, supersedes_of=lambda r: r.supersedes_id) -> list:
    """The rows nothing supersedes, in their given order (a correction replaces what it corrects)."""
    rows = list(rows)
    superseded = {supersedes_of(r) for r in rows}
    return [r for r in rows if id_of(r) not in superseded]


@lru_cache(maxsize=1024)
def _local_date(instant: datetime, tz: str) -> date:
    # study.local_date, for the thousands of courses of a grid or a tick that share `now` and a zone.
    return study.local_date(instant, tz)


@lru_cache(maxsize=8192)
def _instant(on: date, at: time, tz: str) -> datetime:
    # Thousands of courses ask the same (date, time, zone): the grid and a tick load them all.
    return study.local_instant(on, at, tz)


# -------------------------------------------------------------------------------------------------
# The record


# Named tuples, not dataclasses: the grid builds ~100,000 of them, and a tuple is built in C.
class LogFact(NamedTuple):
    """A dose log (a current one is never a retraction: a retraction leaves its day without one)."""

    id: int
    day: int
    outcome: str  # taken | not_taken
    taken_at: datetime | None = None
    source: str = "participant"
    received_at: datetime | None = None
    fasting: str | None = None  # yes | no | unsure; None: not said
    reason: str | None = None
    client_key: str | None = None  # the phone's (or SMS's) key: a replay of it is this log
    dose_mg: float | None = None  # the prescription in force when it was made
    tablets: int | None = None


class LabFact(NamedTuple):
    id: int
    day: int
    plt: float


class DecisionFact(NamedTuple):
    """A signed decision as the participant is told of it: its action (continue | increase | reduce |
    hold | resume) and when they tapped "I understand", if they have."""

    id: int
    day: int  # effective course day
    dose_mg: float
    action: str
    acknowledged_at: datetime | None = None

    @property
    def changes_dose(self) -> bool:
        return self.action != "continue"


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


@dataclass(slots=True)
class CourseRecord:
    """Read-only by convention (not frozen: building 8,000 frozen instances costs a tenth of the grid)."""

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
    signed: tuple[DecisionFact, ...] = ()  # the same decisions with what the participant was told
    outcomes: dict[int, str] | None = None  # the current log's outcome per course day
    logs: dict[int, LogFact] | None = None  # the current logs themselves, where a page shows them
    # Where logs are: each day's newest record, a retraction included (the one a new record supersedes).
    heads: dict[int, LogFact] | None = None
    labs: tuple[LabFact, ...] = ()  # current blood counts
    symptoms: tuple[SymptomFact, ...] = ()  # current symptom reports filed on this course
    pauses: tuple[PauseFact, ...] = ()
    last_day: int | None = None  # a course ended early doses nothing after this day
    # The participant's site's quiet hours (Site.quiet_start/quiet_end); None: the study's.
    quiet_start: time | None = None
    quiet_end: time | None = None

    @property
    def open_pause(self) -> PauseFact | None:
        """The review pause still open, if any (at most one: a unique index says so)."""
        for pause in self.pauses:
            if pause.closed_at is None:
                return pause
        return None

    def __post_init__(self) -> None:
        if type(self.decisions) is not tuple:  # a cache key (doses): hashable
            self.decisions = tuple(self.decisions)
        if self.outcomes is None:
            self.outcomes = {day: log.outcome for day, log in (self.logs or {}).items()}

    def log(self, day: int) -> LogFact | None:
        return self.logs.get(day) if self.logs else None


def with_log(record: CourseRecord, log: LogFact) -> CourseRecord:
    """The record as it is once `log`, the new newest record of its day (a retraction included), is
    written: what a check-off shows next is derived from the record it acted on, not read again."""
    logs = dict(record.logs or {})
    if log.outcome == "retracted":
        logs.pop(log.day, None)
    else:
        logs[log.day] = log
    return replace(record, logs=logs, heads={**(record.heads or {}), log.day: log}, outcomes=None)


# -------------------------------------------------------------------------------------------------
# Dose days


def doses(record: CourseRecord, cfg: StudyConfig) -> tuple[float, ...]:
    """Prescribed mg of days 1..n: the last-signed decision in effect by then (0 = held)."""
    return _prescribed(record.starting_dose_mg, record.decisions, record.last_day, cfg.course_length_days)


@lru_cache(maxsize=4096)
def _prescribed(starting_mg: float, decisions: tuple[tuple[int, float], ...], last_day: int | None,
                length: int) -> tuple[float, ...]:
    # study.dose_for_day day by day; courses share a handful of decision patterns, hence the cache.
    signed = tuple(study.decisions_with_end(decisions, last_day))
    return tuple(study.dose_for_day(day, starting_mg, signed) for day in range(1, length + 1))


def course_to_show(courses: Iterable[T], today: date, cfg: StudyConfig, *, day1=lambda c: c.day1) -> T | None:
    """The course running today; else the next one; else the most recent one (DESIGN §3)."""
    ordered = sorted(courses, key=day1)
    length = timedelta(days=cfg.course_length_days - 1)
    for course in ordered:
        if day1(course) <= today <= day1(course) + length:
            return course
    upcoming = [c for c in ordered if day1(c) > today]
    if upcoming:
        return upcoming[0]
    return ordered[-1] if ordered else None


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
# The statuses a log or a pause can replace (not held, not ended).
_OPEN = frozenset({DoseStatus.UPCOMING, DoseStatus.DUE, DoseStatus.MISSED})


def day_statuses(record: CourseRecord, cfg: StudyConfig, now: datetime) -> list[DoseStatus]:
    """Every day's status at `now` — the one definition every page, job and figure reads.

    ended (after the participant's end) › held (0 mg) › what was logged › paused for review ›
    upcoming / due / missed by the participant's local calendar and the logging cutoff."""
    length = cfg.course_length_days
    last_index = (ended_on(record) - record.day1).days if record.ended_at is not None else length
    calendar, open_days = _course_calendar(record.starting_dose_mg, record.decisions, record.last_day, record.day1,
                                           record.tz, last_index, now, length, cfg.cutoff_days_after,
                                           cfg.cutoff_time)
    statuses = list(calendar)
    logged = _LOGGED
    try:
        for day, outcome in record.outcomes.items():
            if day in open_days:
                statuses[day - 1] = logged[outcome]
    except KeyError:
        raise ValueError(f"unknown dose outcome {outcome!r} (a current log is taken or not_taken)") from None
    if record.pauses:
        for day in paused_days(record, cfg):
            if statuses[day - 1] in _OPEN:
                statuses[day - 1] = DoseStatus.PAUSED
    return statuses


@lru_cache(maxsize=4096)
def _course_calendar(starting_mg: float, decisions: tuple[tuple[int, float], ...], last_day: int | None,
                     day1: date, tz: str, last_index: int, now: datetime, length: int, grace: int,
                     cutoff_time: time) -> tuple[tuple[DoseStatus, ...], frozenset[int]]:
    """The calendar of a course's days and the days a log may still set (`_OPEN`). One look-up per
    course of a grid or a tick (thousands share a start date, a zone and a prescription), keyed by
    the prescription itself rather than by its fourteen daily doses; the open days as course-day
    numbers, because a status's hash is a Python call (Enum.__hash__) and a day's is not."""
    calendar = _calendar(_prescribed(starting_mg, decisions, last_day, length), day1, tz, last_index, now, length,
                         grace, cutoff_time)
    return calendar, frozenset(index + 1 for index, status in enumerate(calendar) if status in _OPEN)


@lru_cache(maxsize=4096)
def _calendar(mg: tuple[float, ...], day1: date, tz: str, last_index: int, now: datetime, length: int,
              grace: int, cutoff_time: time) -> tuple[DoseStatus, ...]:
    """The statuses of a course's days as if nothing were logged or paused. Cached: thousands of
    courses of a grid or a tick share a start date, a zone and a prescription."""
    elapsed = (study.local_date(now, tz) - day1).days  # today's offset from day 1
    statuses = []
    for index in range(length):
        if index > last_index:
            statuses.append(DoseStatus.ENDED)
        elif mg[index] == 0:
            statuses.append(DoseStatus.HELD)
        else:
            late = elapsed - index  # days since this day began, in local dates
            if late < 0:
                statuses.append(DoseStatus.UPCOMING)
            elif late > grace:
                statuses.append(DoseStatus.MISSED)
            elif late < grace:
                statuses.append(DoseStatus.DUE)
            else:
                limit = _instant(day1 + timedelta(days=index + grace), cutoff_time, tz)
                statuses.append(DoseStatus.MISSED if now >= limit else DoseStatus.DUE)
    return tuple(statuses)


def cutoff(record: CourseRecord, day: int, cfg: StudyConfig) -> datetime:
    """The instant after which only staff may record day `day` (DESIGN §3); study.logging_cutoff."""
    return _instant(study.date_of_day(record.day1, day, cfg) + timedelta(days=cfg.cutoff_days_after),
                    cfg.cutoff_time, record.tz)


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
    # The participant may still record it themselves: from its date until the cutoff. A held day
    # too, but only as taken (it happened; staff are told): issue 10, item 10.
    may_log: bool
    cutoff: datetime


def course_days(record: CourseRecord, cfg: StudyConfig, now: datetime) -> list[CourseDay]:
    statuses, mg, today = day_statuses(record, cfg, now), doses(record, cfg), study.local_date(now, record.tz)
    return [_course_day(record, cfg, now, index + 1, status, mg[index], today) for index, status in enumerate(statuses)]


def course_day(record: CourseRecord, cfg: StudyConfig, now: datetime, day: int) -> CourseDay:
    """Day `day` of course_days, without building the other days (a check-off shows one card)."""
    return _course_day(record, cfg, now, day, day_statuses(record, cfg, now)[day - 1], doses(record, cfg)[day - 1],
                       study.local_date(now, record.tz))


def _course_day(record: CourseRecord, cfg: StudyConfig, now: datetime, day: int, status: DoseStatus, mg: float,
                today: date) -> CourseDay:
    on = record.day1 + timedelta(days=day - 1)
    limit = cutoff(record, day, cfg)
    return CourseDay(
        day=day, date=on, dose_mg=mg, tablets=study.tablet_count(mg, cfg), status=status,
        draw_day=study.is_draw_day(day, cfg), log=record.log(day),
        may_log=status is not DoseStatus.ENDED and today >= on and now < limit,
        cutoff=limit,
    )


class ClosePair(NamedTuple):
    """Two neighbouring days whose doses were logged taken too close together."""

    earlier: int
    later: int
    hours: float


def doses_too_close(record: CourseRecord, cfg: StudyConfig) -> list[ClosePair]:
    """Neighbouring course days whose current logs say taken less than cfg.min_hours_between_doses
    apart, by their stated times (study.too_close): a possible double dose."""
    taken = {day: log.taken_at for day, log in (record.logs or {}).items()
             if log.outcome == "taken" and log.taken_at is not None}
    pairs = []
    for day in sorted(taken):
        if day + 1 in taken:
            gap = study.too_close(taken[day], taken[day + 1], cfg.min_hours_between_doses)
            if gap is not None:
                pairs.append(ClosePair(day, day + 1, gap))
    return pairs


def missed_days(record: CourseRecord, cfg: StudyConfig, now: datetime,
                statuses: list[DoseStatus] | None = None) -> list[int]:
    """Prescribed days nothing was logged for by the cutoff (paused and held days never are);
    `statuses`: the record's day_statuses at `now`, where the caller has them already."""
    if statuses is None:
        statuses = day_statuses(record, cfg, now)
    return [i + 1 for i, s in enumerate(statuses) if s is DoseStatus.MISSED]


class Counts(NamedTuple):
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
    # tuple.__new__ directly: Counts(...) is a Python-level __new__, once per course of a grid; and
    # the statuses as module constants (an enum member read from its class is a Python-level look-up).
    return _new_tuple(Counts, (statuses.count(_TAKEN), statuses.count(_NOT_TAKEN), statuses.count(_MISSED),
                               statuses.count(_PAUSED)))


_new_tuple = tuple.__new__
_TAKEN, _NOT_TAKEN, _MISSED, _PAUSED = DoseStatus.TAKEN, DoseStatus.NOT_TAKEN, DoseStatus.MISSED, DoseStatus.PAUSED


# -------------------------------------------------------------------------------------------------
# Dose changes the participant must be told of (issue 10, finding 8)


def _in_force(record: CourseRecord, day: int) -> DecisionFact | None:
    """The decision that sets `day`'s dose: the last signed one in effect by then (study.dose_for_day)."""
    found = None
    for decision in record.signed:
        if decision.day <= day:
            found = decision
    return found


def changes_to_announce(record: CourseRecord, cfg: StudyConfig, now: datetime) -> list[DecisionFact]:
    """Signed dose changes the participant has not acknowledged and that still matter at `now`: the
    participant is active, the course is not over, and no later-signed decision from the same day
    or earlier has replaced the change before it took effect. In signing order."""
    if record.participant_status != "active":
        return []
    last = min(record.last_day or cfg.course_length_days, cfg.course_length_days)
    if (study.local_date(now, record.tz) - record.day1).days + 1 > last:
        return []
    signed = record.signed
    return [d for i, d in enumerate(signed)
            if d.changes_dose and d.acknowledged_at is None and d.day <= last
            and not any(later.day <= d.day for later in signed[i + 1:])]


def reminder_states_change(record: CourseRecord, day: int) -> bool:
    """Whether the dose reminder of `day` must say the dose changed: the decision in force that day
    changed it, and the participant has not acknowledged it yet or it takes effect that very day."""
    decision = _in_force(record, day)
    return decision is not None and decision.changes_dose and decision.dose_mg > 0 and \
        (decision.acknowledged_at is None or decision.day == day)


# -------------------------------------------------------------------------------------------------
# Blood draws: one window rule (study.toml draw_window_days) for the grid, the flag and reminders


def draw_done(record: CourseRecord, draw_day: int, cfg: StudyConfig) -> bool:
    """Whether a current blood count falls within the configured window around `draw_day`."""
    return draw_day in draws_done(record, cfg)


def draws_done(record: CourseRecord, cfg: StudyConfig) -> set[int]:
    """The planned draw days a current blood count covers (within draw_window_days either side)."""
    covers = _draws_covered(cfg.draw_days, cfg.draw_window_days)
    done: set[int] = set()
    for lab in record.labs:
        covered = covers.get(lab.day)  # day 0 (baseline) and days near no draw cover nothing
        if covered:
            done.update(covered)
    return done


@lru_cache(maxsize=16)
def _draws_covered(draw_days: tuple[int, ...], window: int) -> dict[int, tuple[int, ...]]:
    """Course day of a count (after day 0) → the planned draw days whose window holds it."""
    covers: dict[int, tuple[int, ...]] = {}
    for draw_day in draw_days:
        for day in range(max(draw_day - window, 1), draw_day + window + 1):
            covers[day] = (*covers.get(day, ()), draw_day)
    return covers


def draw_overdue_from(record: CourseRecord, draw_day: int, cfg: StudyConfig, grace_hours: float) -> datetime:
    """When a missing count becomes overdue: `grace_hours` after the last day of its window."""
    return _overdue_from(record.day1, record.tz, draw_day, cfg.draw_window_days, grace_hours)


def _overdue_from(day1: date, tz: str, draw_day: int, window: int, grace_hours: float) -> datetime:
    window_end = day1 + timedelta(days=draw_day - 1 + window + 1)
    return _instant(window_end, time(0, 0), tz) + timedelta(hours=grace_hours)


@lru_cache(maxsize=4096)
def _draw_calendar(day1: date, tz: str, draw_days: tuple[int, ...], window: int,
                   grace_hours: float) -> tuple[tuple[int, date, datetime], ...]:
    """(draw day, its date, when its count is overdue) of a course: shared by the courses of a grid
    or a tick that start on the same date in the same zone."""
    return tuple((day, day1 + timedelta(days=day - 1), _overdue_from(day1, tz, day, window, grace_hours))
                 for day in draw_days)


class DrawState(NamedTuple):
    """An active participant's planned draws still missing a count: overdue, and coming up soon."""

    overdue: tuple[int, ...] = ()
    pending: tuple[int, ...] = ()


_NO_DRAWS = DrawState()


def draw_state(record: CourseRecord, cfg: StudyConfig, now: datetime, grace_hours: float,
               ahead_days: int = 0) -> DrawState:
    """Each planned draw day without a current count is overdue (from `draw_overdue_from`), or
    pending while it lies within `ahead_days` of today and its window is not past."""
    if record.participant_status != "active":
        return _NO_DRAWS
    candidates = _draws_due(record.day1, record.tz, cfg.draw_days, cfg.draw_window_days, grace_hours, now,
                            ahead_days)
    if not candidates:
        return _NO_DRAWS
    last = ended_on(record)
    done = draws_done(record, cfg)
    overdue, pending = [], []
    for day, on, is_overdue in candidates:
        if day in done:
            continue
        if is_overdue:
            if last is None or on <= last:
                overdue.append(day)
        else:
            pending.append(day)
    return DrawState(tuple(overdue), tuple(pending)) if overdue or pending else _NO_DRAWS


@lru_cache(maxsize=4096)
def _draws_due(day1: date, tz: str, draw_days: tuple[int, ...], window: int, grace_hours: float, now: datetime,
               ahead_days: int) -> tuple[tuple[int, date, bool], ...]:
    """(draw day, its date, whether overdue) of the planned draws `draw_state` reports at `now` if their count
    is missing: the calendar part, shared by the courses of a grid or a tick that start on the same date."""
    today = _local_date(now, tz)
    soon = today + timedelta(days=ahead_days)
    span = timedelta(days=window)
    due = []
    for day, on, overdue_from in _draw_calendar(day1, tz, draw_days, window, grace_hours):
        if overdue_from <= now:
            due.append((day, on, True))
        elif on <= soon and on + span >= today:
            due.append((day, on, False))
    return tuple(due)


def overdue_draws(record: CourseRecord, cfg: StudyConfig, now: datetime, grace_hours: float) -> list[int]:
    """Planned draw days of an active participant whose count is still missing when overdue."""
    return list(draw_state(record, cfg, now, grace_hours).overdue)


def pending_draws(record: CourseRecord, cfg: StudyConfig, now: datetime, grace_hours: float,
                  ahead_days: int) -> list[int]:
    """Draw days not done, not overdue yet, within `ahead_days` of today: the grid's "coming up"."""
    return list(draw_state(record, cfg, now, grace_hours, ahead_days).pending)


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
            day not in record.outcomes

    if named_day is not None:
        return named_day if open_(named_day) else None
    if open_(asked_day):
        return asked_day
    today = (study.local_date(now, record.tz) - record.day1).days + 1
    candidates = [d for d in (today - 1, today) if open_(d)]
    if len(candidates) == 2:
        return Ask(*candidates)
    return candidates[0] if candidates else None
