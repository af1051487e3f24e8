"""What the participant's pages show about dose days, and logging a dose from the diary.

The rules are in study.py and dosing.py; this module loads the participant's own rows and puts
together what a page needs (undo window, late-logging dates, the days still open).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta

from sqlmodel import Session, select

from diary import course_record, study
from diary.course_record import CourseDay, CourseRecord, PauseFact
from diary.models import Course, Participant, course_not_voided
from diary.services import dosing
from diary.services.course_records import load_record, participant_records
from diary.services.dosing import DoseLogError
from diary.study import DoseStatus, StudyConfig

# What a phone may send as its idempotency key: crypto.randomUUID() or the page's own uuid4.
CLIENT_KEY = re.compile(r"^[A-Za-z0-9_-]{8,64}$")


@dataclass(frozen=True)
class DayCard:
    """One dose day as the participant sees it at `now`."""

    course_id: int
    cycle: int
    plan: CourseDay
    today: date
    undo_until: datetime | None
    # The local dates a late dose may be stated on: the day itself up to today.
    taken_on: tuple[date, ...]

    @property
    def is_today(self) -> bool:
        return self.plan.date == self.today

    @property
    def late(self) -> bool:
        """An earlier day that may still be logged, with the time the participant states."""
        return self.plan.may_log and self.plan.date < self.today


@dataclass(frozen=True)
class TodayView:
    course: CourseRecord | None  # the course to show (course_record.course_to_show)
    today: date
    card: DayCard | None  # None when no course day falls today
    open_days: list[DayCard]  # earlier days nothing was logged for, still before the cutoff
    missed_days: list[CourseDay]  # days whose cutoff passed recently with nothing logged
    pause: PauseFact | None = None  # an open clinical-review pause: wait for the team's call
    changes: list[DoseChangeNotice] = field(default_factory=list)  # signed changes not yet understood


def check_client_key(key: object) -> str:
    if not isinstance(key, str) or not CLIENT_KEY.match(key):
        raise DoseLogError("bad_client_key")
    return key


def courses_of(session: Session, participant: Participant) -> list[Course]:
    return list(session.exec(
        select(Course).where(Course.participant_id == participant.id, course_not_voided())
        .order_by(Course.cycle_number)
    ).all())


def own_course(session: Session, participant: Participant, course_id: int) -> Course | None:
    """The course if it is this participant's; None for anyone else's, so callers answer 404."""
    course = session.get(Course, course_id)
    return course if course is not None and course.participant_id == participant.id else None


def own_record(session: Session, participant: Participant, course_id: int) -> CourseRecord | None:
    """The course's record if it is this participant's (one statement); None for anyone else's."""
    record = load_record(session, course_id)
    return record if record is not None and record.participant_id == participant.id else None


def running_course_id(session: Session, participant: Participant, cfg: StudyConfig,
                      now: datetime) -> int | None:
    """The course a day of which is today, for filing a symptom report; None between courses."""
    today = study.local_date(now, participant.timezone)
    course = dosing.course_for(session, participant, today, cfg)
    return course.id if course and study.course_day_on(course.start_date, today, cfg) else None


def card_for(record: CourseRecord, plan: CourseDay, now: datetime, tz: str, cfg: StudyConfig) -> DayCard:
    today = study.local_date(now, tz)
    undo_until = None
    log = plan.log
    # Staff corrections are not the participant's to undo; after the cutoff nothing is.
    if log is not None and log.source != "staff" and plan.may_log:
        until = log.received_at + timedelta(minutes=cfg.undo_minutes)
        undo_until = until if now < until else None
    taken_on: tuple[date, ...] = ()
    if plan.may_log:
        days = (today - plan.date).days
        taken_on = tuple(plan.date + timedelta(days=n) for n in range(days + 1))
    return DayCard(course_id=record.course_id, cycle=record.cycle, plan=plan, today=today,
                   undo_until=undo_until, taken_on=taken_on)


def own_day_record(session: Session, participant: Participant, course_id: int, day: int,
                   cfg: StudyConfig) -> CourseRecord | None:
    """The record of the participant's own course that has a day `day` (one statement); None for a
    day that does not exist or a course that is not theirs. A check-off hands it on to
    dosing.record_dose, so the request reads the course once."""
    if not 1 <= day <= cfg.course_length_days:
        return None
    return own_record(session, participant, course_id)


def card(record: CourseRecord, day: int, now: datetime, tz: str, cfg: StudyConfig) -> DayCard:
    """Day `day`'s card of a course record."""
    return card_for(record, course_record.course_day(record, cfg, now, day), now, tz, cfg)


def today_view(session: Session, participant: Participant, cfg: StudyConfig, now: datetime) -> TodayView:
    """The today page, from one load of the participant's course records."""
    tz = participant.timezone
    today = study.local_date(now, tz)
    records = participant_records(session, participant.id)
    changes = _notices(records.values(), cfg, now)
    record = course_record.course_to_show(records.values(), today, cfg)
    if record is None:
        return TodayView(None, today, None, [], [], changes=changes)
    plans = course_record.course_days(record, cfg, now)
    number = study.course_day_on(record.day1, today, cfg)
    card = card_for(record, plans[number - 1], now, tz, cfg) if number else None
    open_days = [card_for(record, p, now, tz, cfg) for p in plans
                 if p.date < today and p.may_log and p.status == DoseStatus.DUE]
    # Only the latest misses: the calendar lists the whole course.
    recent = now - timedelta(days=1)
    missed = [p for p in plans if p.status == DoseStatus.MISSED and p.cutoff >= recent]
    return TodayView(record, today, card, open_days, missed, record.open_pause, changes)


@dataclass(frozen=True)
class DoseChangeNotice:
    """A signed change the participant has not acknowledged: "now N tablets = X mg from <date>",
    or a hold ("the study tablets are paused from <date>")."""

    decision_id: int
    from_date: date
    dose_mg: float
    tablets: int

    @property
    def hold(self) -> bool:
        return self.dose_mg == 0


def dose_change_notices(session: Session, participant: Participant, cfg: StudyConfig,
                        now: datetime) -> list[DoseChangeNotice]:
    """What the participant's pages announce until they tap "I understand" (course_record.changes_to_announce)."""
    return _notices(participant_records(session, participant.id).values(),
                    cfg, now)


def _notices(records, cfg: StudyConfig, now: datetime) -> list[DoseChangeNotice]:
    return [DoseChangeNotice(decision_id=change.id, from_date=study.date_of_day(record.day1, change.day, cfg),
                             dose_mg=change.dose_mg, tablets=study.tablet_count(change.dose_mg, cfg))
            for record in sorted(records, key=lambda r: r.day1)
            for change in course_record.changes_to_announce(record, cfg, now)]


def stated_time(taken_on: str | None, at: str | None, tz: str) -> datetime:
    """The instant of a local date ("2026-12-01") and wall time ("07:30"); DoseLogError('bad_time')."""
    try:
        on = date.fromisoformat((taken_on or "").strip())
        wall = time.fromisoformat((at or "").strip())
    except ValueError:
        raise DoseLogError("bad_time") from None
    if wall.tzinfo is not None or len((at or "").strip()) not in (5, 8):
        raise DoseLogError("bad_time")
    return study.local_instant(on, wall, tz)


def log_from_diary(session: Session, cfg: StudyConfig, *, participant: Participant, course_id: int,
                   day: int, outcome: str, client_key: str | None, now: datetime,
                   taken_at: datetime | None = None, reason: str | None = None,
                   fasting: object = None, record: CourseRecord | None = None) -> dosing.Logged:
    """A participant's own log from the page or offline sync, and the course's record with it; the
    caller commits. `fasting` is the answer as sent (dosing.fasting_answer reads it)."""
    return dosing.record_dose(
        session, cfg, participant=participant, course_id=course_id, day=day, outcome=outcome,
        client_key=check_client_key(client_key), source="participant", now=now,
        taken_at=taken_at, reason=reason if outcome == "not_taken" else None,
        fasting=dosing.fasting_answer(fasting) if outcome == "taken" else None, record=record,
    )
