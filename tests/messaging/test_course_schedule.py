"""A whole 14-day course driven by `tick` every half hour: exactly the expected messages, at the
expected local times, in Shanghai and in New York across the end of daylight saving time."""

from datetime import UTC, date, datetime, time, timedelta
from email.utils import parsedate_to_datetime
from zoneinfo import ZoneInfo

from sqlmodel import select

from diary.models import Flag, Message
from diary.services import dosing

STEP = timedelta(minutes=30)


def drive(sms, start: datetime, end: datetime, on_tick=None) -> None:
    now = start
    while now <= end:
        if on_tick:
            on_tick(now)
        sms.tick(now)
        now += STEP


def received(sms, phone: str, tz: str) -> list[tuple[str, str]]:
    """(kind, local send time) of what reached the Twilio double for `phone`, oldest first."""
    kinds = {m.provider_id: m.kind for m in sms.outbox()}
    return [(kinds[m["sid"]], parsedate_to_datetime(m["date_created"]).astimezone(ZoneInfo(tz))
             .strftime("%m-%d %H:%M")) for m in sms.sent_to(phone)]


def expected(day1: date, *, dose: str, followup: str, followup_days=range(1, 15)) -> list[tuple[str, str]]:
    rows = []
    for day in range(1, 15):
        d = day1 + timedelta(days=day - 1)
        if day in (7, 10, 14):
            rows.append(("draw_morn", f"{d:%m-%d} 07:00"))
        rows.append(("dose", f"{d:%m-%d} {dose}"))
        if day in followup_days:
            rows.append(("followup", f"{d:%m-%d} {followup}"))
        if day + 1 in (7, 10, 14):
            rows.append(("draw_eve", f"{d:%m-%d} 19:00"))
    return rows


def test_a_course_in_shanghai_gets_each_reminder_once_at_its_local_time(app, sms, enrol, session):
    tz = "Asia/Shanghai"
    day1 = date(2026, 12, 2)
    p, course, phone = enrol(day1=day1, tz=tz)
    cfg = app.extensions["diary.study"]
    skipped = {3, 5}

    def take_at_nine(now):
        local = now.astimezone(ZoneInfo(tz))
        day = (local.date() - day1).days + 1
        if local.time() == time(9, 0) and 1 <= day <= 14 and day not in skipped:
            dosing.log_dose(session, cfg, participant=p, course_id=course.id, day=day, outcome="taken",
                            client_key=f"k{day}", source="participant", now=now)
            session.commit()

    drive(sms, datetime(2026, 12, 1, 0, 0, tzinfo=ZoneInfo(tz)).astimezone(UTC),
          datetime(2026, 12, 16, 23, 30, tzinfo=ZoneInfo(tz)).astimezone(UTC), take_at_nine)

    assert received(sms, phone, tz) == expected(day1, dose="08:00", followup="10:00", followup_days=skipped)
    missed = session.exec(select(Flag.key).where(Flag.participant_id == p.id, Flag.kind == "missed_dose")).all()
    assert sorted(missed) == [f"missed:{course.id}:3", f"missed:{course.id}:5"]


def test_a_course_in_new_york_keeps_local_times_when_daylight_saving_ends(sms, enrol, clock):
    tz = "America/New_York"
    day1 = date(2026, 10, 26)  # clocks go back on Sunday 1 November, course day 7
    clock.now = datetime(2026, 10, 20, tzinfo=UTC)
    p, course, phone = enrol(day1=day1, tz=tz, reminder_time="09:30")

    drive(sms, datetime(2026, 10, 25, 0, 0, tzinfo=ZoneInfo(tz)).astimezone(UTC),
          datetime(2026, 11, 9, 23, 30, tzinfo=ZoneInfo(tz)).astimezone(UTC))

    assert received(sms, phone, tz) == expected(day1, dose="09:30", followup="11:30")
    utc_doses = sorted({m.sent_at.strftime("%H:%M") for m in sms.outbox()
                        if m.participant_id == p.id and m.kind == "dose"})
    assert utc_doses == ["13:30", "14:30"]  # the same local time on both sides of the change


def test_nothing_is_queued_twice_when_a_tick_is_repeated(sms, enrol, clock):
    enrol(day1=date(2026, 11, 30))
    first = sms.tick(clock.now)
    again = sms.tick(clock.now)

    assert first["reminders"] > 0 and again["reminders"] == 0
    keys = [m.dedupe_key for m in sms.outbox()]
    assert len(keys) == len(set(keys))


def test_every_reminder_row_names_its_dose_day(sms, enrol, clock, session):
    p, course, _ = enrol(day1=date(2026, 11, 30))
    sms.tick(clock.now)

    dose = session.exec(select(Message).where(Message.dedupe_key == f"dose:{course.id}:2")).one()
    assert (dose.course_id, dose.course_day, dose.participant_id) == (course.id, 2, p.id)
