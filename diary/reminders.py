"""What the scheduler owes each participant at instant `now` (DESIGN §4), as pure functions.

A tick hands in a course's record (diary/course_record.py) and gets back the reminders that are
due; whether a dose reminder is still useful is read from the record's day status, so a paused,
held or logged day gets none. The jobs in diary/scheduling/ turn them into outbox rows and flags
under unique keys. No Flask, no database.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from functools import lru_cache

from diary import course_record, study
from diary.course_record import CourseRecord
from diary.study import DoseStatus, StudyConfig

# Participant reminders, in the order a day brings them.
DOSE, FOLLOWUP, DRAW_EVENING, DRAW_MORNING = "dose", "followup", "draw_eve", "draw_morn"
REMINDER_KINDS = (DRAW_MORNING, DOSE, FOLLOWUP, DRAW_EVENING)
DOSE_KINDS = (DOSE, FOLLOWUP)
DRAW_KINDS = (DRAW_EVENING, DRAW_MORNING)


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


def reminder_times(kind: str, day: int, record: CourseRecord, cfg: StudyConfig) -> tuple[datetime, datetime]:
    """(planned instant, expiry) of one reminder: a reminder is useless once its day is over,
    and "blood test tomorrow" is useless once tomorrow has begun."""
    return _times(kind, day, record.day1, record.tz, record.reminder_time, cfg)


def _times(kind: str, day: int, day1: date, tz: str, reminder_time: time,
           cfg: StudyConfig) -> tuple[datetime, datetime]:
    day_date = day1 + timedelta(days=day - 1)
    r = cfg.reminders
    end_of_day = _day_start(day_date + timedelta(days=1), tz)
    if kind == DOSE:
        return _instant(day_date, reminder_time, tz), end_of_day
    if kind == FOLLOWUP:
        at = _instant(day_date, reminder_time, tz) + timedelta(hours=r.followup_hours)
        return at, end_of_day
    if kind == DRAW_EVENING:
        return (_instant(day_date - timedelta(days=1), r.draw_evening_time, tz), _day_start(day_date, tz))
    if kind == DRAW_MORNING:
        return _instant(day_date, r.draw_morning_time, tz), end_of_day
    raise ValueError(f"unknown reminder kind {kind!r}")


def still_useful(kind: str, day: int, record: CourseRecord, cfg: StudyConfig, now: datetime,
                 statuses: list[DoseStatus] | None = None) -> bool:
    """Whether the reason for a reminder still holds at `now`: the day's dose is due (not logged,
    held, paused or ended), or the blood count is not in yet."""
    if not 1 <= day <= cfg.course_length_days:
        return False
    if kind in DOSE_KINDS:
        statuses = statuses if statuses is not None else course_record.day_statuses(record, cfg, now)
        return statuses[day - 1] is DoseStatus.DUE
    if record.participant_status != "active":
        return False
    return not course_record.draw_done(record, day, cfg)


def send_window(at: datetime, expires_at: datetime, now: datetime, tz: str,
                quiet: study.QuietHours) -> datetime | None:
    """When a participant message planned for `at` may go out, seen from `now`: quiet hours
    hold it until they end; None when that is already too late (it is dropped, not sent late)."""
    start = max(at, now)
    not_before = study.quiet_hours_end(start, tz, quiet)
    return not_before if not_before < expires_at else None


def due_reminders(record: CourseRecord, cfg: StudyConfig, now: datetime,
                  statuses: list[DoseStatus] | None = None) -> list[Due]:
    """The reminders of this course whose time has come at `now` and that are still useful
    (`statuses`: the course's day_statuses at `now`, if the caller has them already).

    Only today's and tomorrow's course days can have one (every reminder expires by the end
    of its local day)."""
    timely = _timely(now, record, cfg)
    if not timely:
        return []
    if statuses is None:
        statuses = course_record.day_statuses(record, cfg, now)
    due = [Due(kind, record.course_id, day, at, not_before, expires_at)
           for kind, day, at, not_before, expires_at in timely
           if still_useful(kind, day, record, cfg, now, statuses)]
    if any(d.kind == FOLLOWUP for d in due):
        # Catching up after downtime: one nudge, not a reminder and its follow-up together.
        due = [d for d in due if d.kind != DOSE]
    return due


_TIMELY: dict[tuple, tuple] = {}
_TIMELY_SIZE = 4096


def _timely(now: datetime, record: CourseRecord,
            cfg: StudyConfig) -> tuple[tuple[str, int, datetime, datetime, datetime], ...]:
    """(kind, day, planned instant, send from, expiry) of each reminder of `record`'s course whose
    time has come at `now` and that may still go out before it expires (the site's quiet hours):
    the calendar part of `due_reminders`. It depends only on the start date, zone, reminder time
    and quiet hours, which thousands of courses share, so a tick works it out once for each such
    schedule; whether a reminder is still useful is then read from each course's own record."""
    key = (id(cfg), now, record.tz, record.day1, record.reminder_time, record.quiet_start, record.quiet_end)
    hit = _TIMELY.get(key)
    if hit is not None and hit[0] is cfg:  # the entry holds cfg, so its id is not reused meanwhile
        return hit[1]
    tz = record.tz
    today_day = (study.local_date(now, tz) - record.day1).days + 1
    candidates = [(DRAW_MORNING, today_day), (DOSE, today_day), (FOLLOWUP, today_day),
                  (DRAW_EVENING, today_day + 1)]
    quiet = study.quiet_window(cfg, record.quiet_start, record.quiet_end)  # the participant's site's
    timely = []
    for kind, day in candidates:
        if not 1 <= day <= cfg.course_length_days:
            continue
        if kind in DRAW_KINDS and not study.is_draw_day(day, cfg):
            continue
        at, expires_at = _times(kind, day, record.day1, tz, record.reminder_time, cfg)
        if at > now or now >= expires_at:
            continue
        not_before = send_window(at, expires_at, now, tz, quiet)
        if not_before is not None:
            timely.append((kind, day, at, not_before, expires_at))
    if len(_TIMELY) >= _TIMELY_SIZE:
        _TIMELY.clear()
    _TIMELY[key] = (cfg, tuple(timely))
    return _TIMELY[key][1]


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

