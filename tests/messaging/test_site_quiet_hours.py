"""Quiet hours are a site's (issue 14, item 1): a participant's messages wait for the end of their
own site's window, while a participant at another site is texted as usual; staff alerts never wait."""

from datetime import UTC, date, datetime, time
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy.exc import IntegrityError
from sqlmodel import select

from diary.models import Message, Site
from diary.scheduling.alerts import queue_dose_change_notice
from diary.services import administration, decisions
from diary.services.flags import raise_flag

SHANGHAI = ZoneInfo("Asia/Shanghai")
DAY1 = date(2026, 11, 30)  # course day 3 on 2 December


def at(day: int, hhmm: str) -> datetime:
    """A local Shanghai instant on December `day`, as UTC."""
    hours, minutes = map(int, hhmm.split(":"))
    return datetime(2026, 12, day, hours, minutes, tzinfo=SHANGHAI).astimezone(UTC)


@pytest.fixture
def cfg(app):
    return app.extensions["diary.study"]


def set_quiet_hours(session, site, start, end):
    """What the admin's site form does, through the same use case."""
    administration.update_site(session, site, name=site.name, timezone=site.timezone, phone=site.phone,
                               on_call_phone=site.on_call_phone, emergency_phone=site.emergency_phone,
                               plt_lln=site.plt_lln, quiet_start=start, quiet_end=end, actor="test",
                               now=at(1, "09:00"))
    session.commit()


def row(session, key):
    session.expire_all()
    return session.exec(select(Message).where(Message.dedupe_key == key)).one()


def test_a_reminder_waits_for_the_end_of_its_sites_quiet_hours_and_not_another_sites(sms, enrol, session, world):
    a, course_a, phone_a = enrol(day1=DAY1, site="A")
    b, course_b, phone_b = enrol(day1=DAY1, site="B")
    set_quiet_hours(session, world.sites["A"], "06:00", "08:30")  # site A now sleeps in

    sms.tick(at(2, "08:00"))

    assert sms.sent_to(phone_a) == [] and len(sms.sent_to(phone_b)) == 1
    assert row(session, f"dose:{course_a.id}:3").not_before == at(2, "08:30")
    sms.tick(at(2, "08:30"))
    assert len(sms.sent_to(phone_a)) == 1


def test_a_reminder_still_queued_when_its_sites_quiet_hours_begin_is_held_and_released_when_they_end(
        sms, enrol, session, world):
    a, course_a, phone_a = enrol(day1=DAY1, site="A", reminder_time="11:50")
    b, course_b, phone_b = enrol(day1=DAY1, site="B", reminder_time="11:50")
    set_quiet_hours(session, world.sites["A"], "12:00", "13:00")  # a siesta at site A
    sms.tick(at(2, "11:50"), batch_size=0)  # both queued; none sent yet (a backlog, a slow provider)

    sms.tick(at(2, "12:05"))

    assert sms.sent_to(phone_a) == [] and len(sms.sent_to(phone_b)) == 1
    held = row(session, f"dose:{course_a.id}:3")
    assert (held.status, held.next_attempt_at) == ("queued", at(2, "13:00"))
    sms.tick(at(2, "13:00"))
    assert len(sms.sent_to(phone_a)) == 1


def test_a_dose_change_notice_waits_for_the_participants_sites_quiet_hours(app, enrol, session, world, cfg):
    a, course_a, _ = enrol(day1=DAY1, site="A")
    b, course_b, _ = enrol(day1=DAY1, site="B")
    set_quiet_hours(session, world.sites["A"], "12:00", "13:00")
    notices = {}
    with app.test_request_context():
        for p, course in ((a, course_a), (b, course_b)):
            decision = decisions.sign_decision(session, cfg, course=course, signer=world.staff["investigator_a"],
                                               effective_day=4, dose_mg=7.5, current_dose_mg=5, now=at(2, "12:30"))
            notices[p.site_id] = queue_dose_change_notice(session, app.extensions["diary.cipher"], p, course,
                                                          decision, at(2, "12:30"))
        session.commit()

    assert notices[world.sites["A"].id].not_before == at(2, "13:00")
    assert notices[world.sites["B"].id].not_before == at(2, "12:30")


def test_a_site_that_switched_quiet_hours_off_is_texted_at_night(sms, enrol, session, world):
    a, course_a, phone_a = enrol(day1=DAY1, site="A")
    a.reminder_time = "22:00"  # chosen while site A had no quiet hours
    session.add(a)
    set_quiet_hours(session, world.sites["A"], "00:00", "00:00")

    sms.tick(at(2, "22:00"))

    assert len(sms.sent_to(phone_a)) == 1


@pytest.mark.parametrize("participant_sms", ["on", "off"])
def test_a_serious_adverse_event_texts_the_on_call_phone_at_once_even_at_night(sms, enrol, session, world,
                                                                               participant_sms):
    a, course_a, _ = enrol(day1=DAY1, site="A")
    a.sms_opt_in = participant_sms == "on"  # their choice about their own texts, not about the site's alerts
    session.add(a)
    raise_flag(session, key=f"sae:{a.id}:1", kind="sae", site_id=a.site_id, participant_id=a.id,
               now=at(2, "23:00"), detail="SAE: hospitalisation")
    session.commit()

    sms.tick(at(2, "23:10"))

    [alert] = [m for m in sms.outbox() if m.kind == "sae_alert"]
    assert alert.status == "sent" and len(sms.sent_to(world.sites["A"].on_call_phone)) == 1


def test_the_database_refuses_half_a_quiet_window(session, world):
    site = session.get(Site, world.sites["B"].id)
    site.quiet_start = time(22, 0)  # no end: neither the site's window nor clearly the study's
    session.add(site)
    with pytest.raises(IntegrityError):
        session.commit()
