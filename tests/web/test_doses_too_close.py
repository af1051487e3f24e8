"""Two doses logged taken less than the configured gap apart raise one staff flag, whatever the
channel (issue 10, finding 2; study.toml min_hours_between_doses)."""

import uuid
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from sqlmodel import select

from diary.models import Flag
from diary.services import dosing

SHANGHAI = ZoneInfo("Asia/Shanghai")


def local(offset: int, hour: int, minute: int = 0) -> datetime:
    """A wall time in Shanghai: offset 0 is yesterday (course day 2), 1 today (day 3, the world's 09:00)."""
    return datetime(2026, 11, 30, hour, minute, tzinfo=SHANGHAI) + timedelta(days=offset)


def log(app, session, world, clock, day: int, taken_at: datetime, source: str = "participant", **kw):
    staff = {"staff_id": world.staff["nurse_a"].id, "correction_reason": "Told the nurse"} if source == "staff" else {}
    entry = dosing.log_dose(session, app.extensions["diary.study"], participant=world.participants["pa"],
                            course_id=world.courses["pa"].id, day=day, outcome="taken", source=source, now=clock.now,
                            taken_at=taken_at, client_key=kw.pop("client_key", uuid.uuid4().hex), **staff, **kw)
    session.commit()
    return entry


def flags(session) -> list[Flag]:
    session.expire_all()
    return session.exec(select(Flag).where(Flag.kind == "doses_too_close")).all()


@pytest.mark.parametrize("source", ["participant", "sms", "staff"])
def test_yesterdays_dose_logged_this_morning_and_todays_an_hour_later_raise_a_flag(
        app, session, world, clock, source):
    log(app, session, world, clock, 2, local(1, 7, 30))  # day 2's dose, taken late this morning
    log(app, session, world, clock, 3, local(1, 8, 30), source=source)
    [flag] = flags(session)
    course = world.courses["pa"]
    assert flag.key == f"doses_too_close:{course.id}:2:3"
    assert flag.participant_id == world.participants["pa"].id and flag.acknowledged_at is None
    assert "days 2 and 3" in flag.detail and "1.0 h apart" in flag.detail and "less than 12 h" in flag.detail


def test_doses_a_day_apart_raise_no_flag(app, session, world, clock):
    log(app, session, world, clock, 2, local(0, 8, 0))
    log(app, session, world, clock, 3, local(1, 8, 30))
    assert flags(session) == []


def test_the_gap_is_the_configured_one(app, session, world, clock):
    log(app, session, world, clock, 2, local(0, 21, 0))
    log(app, session, world, clock, 3, local(1, 8, 59))  # 11 h 59 min: too close at the default 12 h
    assert len(flags(session)) == 1


def test_a_staff_correction_that_brings_two_doses_together_raises_it_once(app, session, world, clock):
    log(app, session, world, clock, 2, local(0, 8, 0))
    log(app, session, world, clock, 3, local(1, 8, 30))
    assert flags(session) == []
    log(app, session, world, clock, 2, local(0, 23, 30), source="staff")
    log(app, session, world, clock, 2, local(1, 0, 30), source="staff")  # corrected again: same pair
    assert len(flags(session)) == 1


def test_a_replayed_sync_of_the_second_dose_adds_no_second_flag(app, client, auth, session, world, clock):
    log(app, session, world, clock, 2, local(1, 7, 30))
    auth.participant("pa")
    token = client.get("/sync/csrf").get_json()["csrf_token"]
    body = {"client_key": "replayed-sync-1", "course_id": world.courses["pa"].id, "day": 3, "outcome": "taken",
            "taken_at": local(1, 8, 45).isoformat()}
    for _ in range(2):
        assert client.post("/sync/dose", json=body, headers={"X-CSRFToken": token}).get_json()["ok"] is True
    assert len(flags(session)) == 1
