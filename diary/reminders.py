"""What the scheduler owes each participant at instant `now` (DESIGN §4), as pure functions.

A tick hands in what the database says about a course (dose per day, which days are logged,
which blood counts are in) and gets back the reminders and flags that are due; the jobs in
diary/scheduling/ turn them into outbox rows and flags under unique keys. No Flask, no database.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from functools import lru_cache

from diary import study
from diary.study import StudyConfig

# Participant reminders, in the order a day brings them.
DOSE, FOLLOWUP, DRAW_EVENING, DRAW_MORNING = "dose", "followup", "draw_eve", "draw_morn"
REMINDER_KINDS = (DRAW_MORNING, DOSE, FOLLOWUP, DRAW_EVENING)
DOSE_KINDS = (DOSE, FOLLOWUP)
DRAW_KINDS = (DRAW_EVENING, DRAW_MORNING)


@dataclass(frozen=True)
class CourseState:
    """What a tick knows about one running course."""

    course_id: int
    day1: date
    tz: str
    reminder_time: time
    doses: tuple[float, ...]  # prescribed mg for days 1..n (0 = held)
    logged: frozenset[int] = frozenset()  # days with a current taken/not-taken record
    drawn: frozenset[int] = frozenset()  # draw days whose blood count is entered


@dataclass(frozen=True)
class Due:
    """One reminder owed now: send from `not_before`, never at or after `expires_at`."""

    kind: str
    course_id: int
    day: int
    at: datetime
    not_before: datetime
    expires_at: datetime

    @property
    def dedupe_key(self) -> str:
        return reminder_key(self.kind, self.course_id, self.day)


def reminder_key(kind: str, course_id: int, day: int) -> str:
    return f"{kind}:{course_id}:{day}"


@lru_cache(maxsize=4096)
def _instant(day: date, at: time, tz: str) -> datetime:
    # A tick asks the same (date, time, zone) for thousands of participants.
    return study.local_instant(day, at, tz)


def _day_start(day: date, tz: str) -> datetime:
    return _instant(day, time(0, 0), tz)


def parse_hhmm(value: str) -> time:
    """'08:00' → time(8, 0); ValueError otherwise."""
    return time.fromisoformat(value)


def reminder_times(kind: str, day: int, state: CourseState, cfg: StudyConfig) -> tuple[datetime, datetime]:
    """(planned instant, expiry) of one reminder: a reminder is useless once its day is over,
    and "blood test tomorrow" is useless once tomorrow has begun."""
    day_date = state.day1 + timedelta(days=day - 1)
    r = cfg.reminders
    end_of_day = _day_start(day_date + timedelta(days=1), state.tz)
    if kind == DOSE:
        return _instant(day_date, state.reminder_time, state.tz), end_of_day
    if kind == FOLLOWUP:
        at = _instant(day_date, state.reminder_time, state.tz) + timedelta(hours=r.followup_hours)
        return at, end_of_day
    if kind == DRAW_EVENING:
        return (_instant(day_date - timedelta(days=1), r.draw_evening_time, state.tz),
                _day_start(day_date, state.tz))
    if kind == DRAW_MORNING:
        return _instant(day_date, r.draw_morning_time, state.tz), end_of_day
    raise ValueError(f"unknown reminder kind {kind!r}")


def still_useful(kind: str, day: int, state: CourseState) -> bool:
    """Whether the reason for a reminder still holds: the dose is prescribed and not logged,
    or the blood count is not in yet."""
    if not 1 <= day <= len(state.doses):
        return False
    if kind in DOSE_KINDS:
        return state.doses[day - 1] > 0 and day not in state.logged
    return day not in state.drawn


def send_window(at: datetime, expires_at: datetime, now: datetime, tz: str,
                cfg: StudyConfig) -> datetime | None:
    """When a participant message planned for `at` may go out, seen from `now`: quiet hours
    hold it until they end; None when that is already too late (it is dropped, not sent late)."""
    start = max(at, now)
    not_before = study.quiet_hours_end(start, tz, cfg)
    return not_before if not_before < expires_at else None


def due_reminders(state: CourseState, cfg: StudyConfig, now: datetime) -> list[Due]:
    """The reminders of this course whose time has come at `now` and that are still useful.

    Only today's and tomorrow's course days can have one (every reminder expires by the end
    of its local day), so the cost per course does not grow with the course length."""
    today = study.local_date(now, state.tz)
    today_day = (today - state.day1).days + 1
    candidates = [(DRAW_MORNING, today_day), (DOSE, today_day), (FOLLOWUP, today_day),
                  (DRAW_EVENING, today_day + 1)]
    due = []
    for kind, day in candidates:
        if not 1 <= day <= len(state.doses):
            continue
        if kind in DRAW_KINDS and not study.is_draw_day(day, cfg):
            continue
        at, expires_at = reminder_times(kind, day, state, cfg)
        if at > now or now >= expires_at or not still_useful(kind, day, state):
            continue
        not_before = send_window(at, expires_at, now, state.tz, cfg)
        if not_before is not None:
            due.append(Due(kind, state.course_id, day, at, not_before, expires_at))
    if any(d.kind == FOLLOWUP for d in due):
        # Catching up after downtime: one nudge, not a reminder and its follow-up together.
        due = [d for d in due if d.kind != DOSE]
    return due


def missed_days(state: CourseState, cfg: StudyConfig, now: datetime) -> list[int]:
    """Prescribed days with nothing logged whose logging cutoff has passed (DESIGN §3: missed)."""
    cutoff_time = cfg.cutoff_time
    missed = []
    for day, dose in enumerate(state.doses, start=1):
        if dose <= 0 or day in state.logged:
            continue
        last = state.day1 + timedelta(days=day - 1 + cfg.cutoff_days_after)
        if _instant(last, cutoff_time, state.tz) > now:
            break  # later days have later cutoffs
        missed.append(day)
    return missed


def overdue_draws(state: CourseState, cfg: StudyConfig, now: datetime, grace_hours: float) -> list[int]:
    """Draw days whose blood count is still missing `grace_hours` after the day ended."""
    overdue = []
    for day in cfg.draw_days:
        if day in state.drawn or day > len(state.doses):
            continue
        end = _day_start(state.day1 + timedelta(days=day), state.tz)
        if end + timedelta(hours=grace_hours) <= now:
            overdue.append(day)
    return overdue


def doses_by_day(starting_dose_mg: float, decisions: Iterable[tuple[int, int, float]],
                 length: int, last_day: int | None = None) -> tuple[float, ...]:
    """Prescribed mg per course day from (signing order, effective day, mg) decisions; a course
    ended early after `last_day` doses nothing later."""
    signed = study.decisions_with_end([(effective, mg) for _order, effective, mg in sorted(decisions)], last_day)
    return tuple(study.dose_for_day(day, starting_dose_mg, signed) for day in range(1, length + 1))


def current_log_days(logs: Iterable[tuple[int, int, str, int | None]]) -> frozenset[int]:
    """Days with a current taken/not-taken record, from (id, course_day, outcome, supersedes_id)
    rows: the record nothing supersedes counts, and a retraction leaves the day empty."""
    rows = list(logs)
    superseded = {supersedes for _id, _day, _outcome, supersedes in rows if supersedes is not None}
    return frozenset(day for row_id, day, outcome, _s in rows
                     if row_id not in superseded and outcome != "retracted")


def digest_due(site_tz: str, digest_time: time, now: datetime) -> tuple[date, datetime] | None:
    """(local date, expiry) of the staff digest owed at `now`: from `digest_time` until midnight."""
    today = study.local_date(now, site_tz)
    at = _instant(today, digest_time, site_tz)
    expires_at = _day_start(today + timedelta(days=1), site_tz)
    return (today, expires_at) if at <= now < expires_at else None


def course_window(now: datetime, cfg: StudyConfig, grace_days: int = 2) -> tuple[date, date]:
    """Start dates of the courses a tick must look at, in any time zone: running now, or ended
    recently enough that a cutoff or a blood-count deadline may still fall due."""
    utc_today = now.date()
    # ±1 day covers every zone's local date; the tail covers cutoffs and overdue labs.
    return (utc_today - timedelta(days=cfg.course_length_days + cfg.cutoff_days_after + grace_days + 1),
            utc_today + timedelta(days=2))

