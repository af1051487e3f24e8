"""The dose day: what to take, what was logged, and logging a dose from any channel (DESIGN §3).

`log_dose` is the one use case behind the today page, offline sync, SMS replies and staff
corrections; the rules it applies come from diary/study.py.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta

from sqlalchemy.orm import make_transient_to_detached
from sqlmodel import Session, select

from diary import audit, course_record, study
from diary.course_record import CourseRecord, LogFact
from diary.models import FASTING, Course, DoseLog, Participant, course_not_voided
from diary.services import flag_details
from diary.services.course_records import is_current, load_record
from diary.services.flags import raise_flag
from diary.study import DoseStatus, StudyConfig

# A phone clock a few minutes fast must not make a dose "in the future".
CLOCK_SKEW = timedelta(minutes=5)


class DoseLogError(ValueError):
    """Refused; `code` names the reason, translated where it is shown."""

    def __init__(self, code: str):
        super().__init__(code)
        self.code = code


def fasting_answer(value: object) -> str | None:
    """'yes', 'no' or 'unsure' from a form, a JSON body or a queued record; None when not given.

    A phone queue written by the earlier page sends true (tapped "empty stomach") or false (not
    tapped, i.e. not said). Anything else is refused (DoseLogError 'bad_fasting')."""
    if value is None or value == "" or value is False:
        return None
    if value is True:
        return "yes"
    if isinstance(value, str) and value in FASTING:
        return value
    raise DoseLogError("bad_fasting")


def course_for(session: Session, participant: Participant, today: date, cfg: StudyConfig) -> Course | None:
    """The course running today; else the next one; else the most recent one (course_record.course_to_show)."""
    courses = session.exec(select(Course).where(Course.participant_id == participant.id, course_not_voided())).all()
    return course_record.course_to_show(courses, today, cfg, day1=lambda c: c.start_date)


class Logged:
    """A dose log and its course's record as it is with the log in it (what the page shows next).

    A log this request wrote is built from the row the INSERT returned when `log` is first read:
    the diary page reads only the record, and a SQLModel object of fifteen fields was a tenth of a
    check-off's write (issue 15)."""

    __slots__ = ("_log", "_row", "_session", "record")

    def __init__(self, log: DoseLog | None, record: CourseRecord, *, row: dict | None = None,
                 session: Session | None = None):
        self._log, self.record, self._row, self._session = log, record, row, session

    @property
    def log(self) -> DoseLog:
        if self._log is None:
            log = DoseLog(**self._row)
            make_transient_to_detached(log)
            self._session.add(log)  # in the session as the stored row, without writing it again
            self._log = log
        return self._log


def log_dose(session: Session, cfg: StudyConfig, **kw) -> DoseLog:
    """Record taken / not taken / undo for one course day (record_dose, without the record)."""
    return record_dose(session, cfg, **kw).log


def record_dose(
    session: Session,
    cfg: StudyConfig,
    *,
    participant: Participant,
    course_id: int,
    day: int,
    outcome: str,
    client_key: str,
    source: str,
    now: datetime,
    taken_at: datetime | None = None,
    reason: str | None = None,
    fasting: str | None = None,
    staff_id: int | None = None,
    correction_reason: str | None = None,
    record: CourseRecord | None = None,
) -> Logged:
    """Record taken / not taken / undo for one course day; a replayed client_key returns the first record.

    Participants (page, offline sync, SMS) may log until the cutoff; after it only staff may,
    with a reason. A correction supersedes the previous record; nothing is deleted. `record`: the
    course's record as this request already loaded it (read once per request), else it is loaded.
    One INSERT … ON CONFLICT DO NOTHING writes the log: the database keeps one record per client key
    and one chain of records per day, however many phones, taps and gateway retries arrive at once.
    """
    if record is None or record.course_id != course_id:
        record = load_record(session, course_id)
    try:
        if record is None or record.participant_id != participant.id:
            raise DoseLogError("not_your_course")
        current = record.log(day) if 1 <= day <= cfg.course_length_days else None
        if current is not None and current.client_key == client_key:
            return Logged(session.get(DoseLog, current.id), record)  # a replay of the current record
        values, plan = _checked(cfg, record, participant, day, outcome, client_key, source, now,
                                taken_at, reason, fasting, staff_id, correction_reason)
    except DoseLogError:
        # A replay of a record since superseded (an offline queue sent again): the first answer stands.
        existing = _replayed(session, client_key, course_id, day)
        if existing is None:
            raise
        return Logged(existing, load_record(session, course_id))
    if values is None:
        # A second phone, or an SMS reply after the page check-off: already recorded.
        return Logged(session.get(DoseLog, current.id), record)

    written = audit.insert_locked(session, DoseLog.__table__, values, site_id=participant.site_id,
                                  participant_id=participant.id)
    if written is None:
        # The same key, or the same day, written a moment ago by a concurrent request: the database
        # keeps one chain per day (uq_doselog_first_record, unique supersedes_id), and the loser
        # gets the winner's record back, as a replay does.
        session.expire_all()
        raced = _replayed(session, client_key, course_id, day)
        if raced is None:
            raced = _head(session, course_id, day)
            if raced is None or raced.outcome == "retracted":
                raise DoseLogError("conflict") from None
        return Logged(raced, load_record(session, course_id))
    row, locked = written
    fact = LogFact(row["id"], day, outcome, row["taken_at"], source, row["received_at"], row["fasting"], row["reason"],
                   client_key, row["dose_mg"], row["tablets"])
    head = (record.heads or {}).get(day)
    audit.record(
        session, actor=f"staff:{staff_id}" if source == "staff" else
        ("sms" if source == "sms" else f"participant:{participant.id}"),
        action="dose_logged" if head is None else "dose_log_superseded",
        entity="DoseLog", entity_id=fact.id, site_id=participant.site_id,
        participant_id=participant.id, at=now, reason=correction_reason,
        before=_snapshot(course_id, head) if head is not None else None, after=_snapshot(course_id, fact),
        row=row, locked=locked,
    )
    after = course_record.with_log(record, fact)
    if outcome == "taken":
        _flag_doses_too_close(session, cfg, after, participant, day, now)
    if outcome == "taken" and plan.status is DoseStatus.HELD:
        # Issue 10, item 10: recorded as taken with the prescription in force (0 mg, 0 tablets), so
        # the record keeps its meaning; staff are told, and the deviation scan proposes it
        # (records.course_deviations: held_dose).
        raise_flag(session, key=f"dose_on_held_day:{course_id}:{day}", kind="dose_on_held_day",
                   site_id=participant.site_id, participant_id=participant.id, now=now,
                   detail=flag_details.detail("dose_on_held_day", day=day))
    if outcome == "taken" and plan.status is DoseStatus.PAUSED:
        # Issue 10, item 10: recorded as taken (it happened), shown to staff, proposed as a deviation.
        raise_flag(session, key=f"dose_in_pause:{fact.id}", kind="dose_in_pause", site_id=participant.site_id,
                   participant_id=participant.id, now=now,
                   detail=flag_details.detail("dose_in_pause", day=day))
    return Logged(None, after, row=row, session=session)


def _checked(cfg: StudyConfig, record: CourseRecord, participant: Participant, day: int, outcome: str,
             client_key: str, source: str, now: datetime, taken_at: datetime | None, reason: str | None,
             fasting: str | None, staff_id: int | None, correction_reason: str | None):
    """The new log's column values and the day's plan; values None when the day already says
    `outcome`. DoseLogError when the rules refuse it."""
    if not 1 <= day <= cfg.course_length_days:
        raise DoseLogError("no_such_day")
    if outcome not in ("taken", "not_taken", "retracted"):
        raise DoseLogError("bad_outcome")
    if fasting is not None and (fasting not in FASTING or outcome != "taken"):
        raise DoseLogError("bad_fasting")
    plan = course_record.course_day(record, cfg, now, day)
    current = record.log(day)
    head = (record.heads or {}).get(day)

    if source == "staff":
        if not correction_reason or not correction_reason.strip():
            raise DoseLogError("reason_required")
    else:
        if not plan.may_log:
            raise DoseLogError("outside_window")
        if plan.status is DoseStatus.HELD and outcome == "not_taken":
            # Nothing was prescribed: there is no dose to skip. Tablets taken anyway are recorded.
            raise DoseLogError("held")
        if outcome == "retracted":
            if current is None:
                raise DoseLogError("nothing_to_undo")
            if now - current.received_at > timedelta(minutes=cfg.undo_minutes):
                raise DoseLogError("undo_expired")
        elif current is not None and current.outcome == outcome:
            return None, plan

    if outcome == "taken":
        taken_at = taken_at or now
        day_start = study.local_instant(plan.date, datetime.min.time(), participant.timezone)
        if taken_at > now + CLOCK_SKEW:
            raise DoseLogError("time_in_future")
        if taken_at < day_start:
            raise DoseLogError("time_before_day")
    elif outcome == "not_taken":
        if reason not in cfg.not_taken_reasons:
            raise DoseLogError("reason_required")
        taken_at = None
    else:
        taken_at = None
    return dict(
        course_id=record.course_id, course_day=day, outcome=outcome, taken_at=taken_at,
        reason=reason if outcome == "not_taken" else None, fasting=fasting, note=None, source=source,
        dose_mg=plan.dose_mg, tablets=plan.tablets, staff_id=staff_id, received_at=now, client_key=client_key,
        supersedes_id=head.id if head is not None else None, correction_reason=correction_reason,
    ), plan


def _replayed(session: Session, client_key: str, course_id: int, day: int) -> DoseLog | None:
    """The record already made with `client_key`, if any; DoseLogError('client_key_reused') when it
    was for another course day."""
    existing = session.exec(select(DoseLog).where(DoseLog.client_key == client_key)).first()
    if existing is not None and (existing.course_id != course_id or existing.course_day != day):
        raise DoseLogError("client_key_reused")
    return existing


def _flag_doses_too_close(session: Session, cfg: StudyConfig, record: CourseRecord, participant: Participant,
                          day: int, now: datetime) -> None:
    """Issue 10, finding 2: one staff flag per pair of neighbouring days whose current logs say taken
    less than cfg.min_hours_between_doses apart (course_record.doses_too_close), from any channel."""
    for pair in course_record.doses_too_close(record, cfg):
        if day in (pair.earlier, pair.later):
            raise_flag(session, key=f"doses_too_close:{record.course_id}:{pair.earlier}:{pair.later}",
                       kind="doses_too_close", site_id=participant.site_id, participant_id=participant.id, now=now,
                       detail=flag_details.detail("doses_too_close", cycle=record.cycle, earlier=pair.earlier,
                                                  later=pair.later, hours=f"{pair.hours:.1f}",
                                                  limit=f"{cfg.min_hours_between_doses:g}"))


def _head(session: Session, course_id: int, day: int) -> DoseLog | None:
    """The newest record of a day (a retraction included): the one a new record supersedes."""
    return session.exec(select(DoseLog).where(DoseLog.course_id == course_id, DoseLog.course_day == day,
                                              is_current(DoseLog)).order_by(DoseLog.id.desc())).first()


def _snapshot(course_id: int, log: LogFact) -> dict:
    return {
        "course_id": course_id, "course_day": log.day, "outcome": log.outcome,
        "taken_at": log.taken_at, "reason": log.reason, "fasting": log.fasting,
        "dose_mg": log.dose_mg, "tablets": log.tablets,
        "source": log.source, "received_at": log.received_at, "client_key": log.client_key,
    }
