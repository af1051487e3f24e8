"""Reminder rules a participant or the study team would notice, one behaviour per test."""

from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from sqlmodel import select

from diary.models import Flag, Message
from diary.scheduling.alerts import queue_dose_change_notice
from diary.services import courses, decisions, dosing, labs, symptoms
from diary.services.flags import raise_flag

SHANGHAI = ZoneInfo("Asia/Shanghai")
DAY1 = date(2026, 11, 30)  # course day 3 on 2 December


def at(day: int, hhmm: str) -> datetime:
    """A local Shanghai instant on December `day`, as UTC."""
    hours, minutes = map(int, hhmm.split(":"))
    return datetime(2026, 12, day, hours, minutes, tzinfo=SHANGHAI).astimezone(UTC)


def kinds(sms, phone):
    sent = {m["sid"] for m in sms.sent_to(phone)}
    return [m.kind for m in sms.outbox() if m.provider_id in sent]


def row(session, key):
    session.expire_all()
    return session.exec(select(Message).where(Message.dedupe_key == key)).one()


def enrol_with_a_reminder_in_quiet_hours(enrol, session, hhmm):
    """A participant whose reminder time was chosen before the site's quiet hours grew to cover it:
    the settings page and enrolment now refuse such a time, but a stored one must still be held."""
    p, course, phone = enrol(day1=DAY1)
    p.reminder_time = hhmm
    session.add(p)
    session.commit()
    return p, course, phone


def take(app, session, p, course, day, now):
    dosing.log_dose(session, app.extensions["diary.study"], participant=p, course_id=course.id, day=day,
                    outcome="taken", client_key=f"take-{day}-{now.timestamp()}", source="participant", now=now)
    session.commit()


@pytest.fixture
def cfg(app):
    return app.extensions["diary.study"]


def test_a_reminder_due_in_quiet_hours_waits_for_them_to_end(sms, enrol, session):
    p, course, phone = enrol_with_a_reminder_in_quiet_hours(enrol, session, "06:00")
    sms.tick(at(2, "06:00"))
    sms.tick(at(2, "06:30"))
    assert sms.sent_to(phone) == []
    assert row(session, f"dose:{course.id}:3").not_before == at(2, "07:00")

    sms.tick(at(2, "07:00"))

    assert kinds(sms, phone) == ["dose"]


def test_a_logged_dose_suppresses_the_follow_up(app, sms, enrol, session):
    p, course, phone = enrol(day1=DAY1)
    sms.tick(at(2, "08:00"))
    take(app, session, p, course, 3, at(2, "09:00"))

    sms.tick(at(2, "10:00"))
    sms.tick(at(2, "12:00"))

    assert kinds(sms, phone) == ["dose"]
    assert session.exec(select(Message).where(Message.kind == "followup", Message.participant_id == p.id)).all() == []


def test_a_follow_up_comes_once_when_the_dose_is_still_not_logged(sms, enrol):
    p, course, phone = enrol(day1=DAY1)
    for hhmm in ("08:00", "10:00", "10:30", "11:00"):
        sms.tick(at(2, hhmm))

    assert kinds(sms, phone) == ["dose", "followup"]


def test_a_reminder_whose_dose_is_logged_before_dispatch_is_dropped(app, sms, enrol, session):
    p, course, phone = enrol_with_a_reminder_in_quiet_hours(enrol, session, "06:30")
    sms.tick(at(2, "06:30"))  # queued, held by quiet hours until 07:00
    take(app, session, p, course, 3, at(2, "06:45"))

    sms.tick(at(2, "07:00"))

    assert sms.sent_to(phone) == []
    assert row(session, f"dose:{course.id}:3").status == "dropped"


def test_a_reminder_held_past_the_end_of_its_day_is_dropped_not_sent_next_morning(sms, enrol, session, twilio):
    p, course, phone = enrol(day1=DAY1, reminder_time="21:00")
    twilio.fail_next(10, status=503)
    sms.tick(at(2, "21:00"))  # the provider is down: retried later
    sms.tick(at(2, "22:00"))  # now quiet hours, which outlast the day
    sms.tick(at(3, "07:00"))

    assert sms.sent_to(phone) == []
    assert row(session, f"dose:{course.id}:3").status == "dropped"


def test_the_scheduler_catching_up_after_downtime_sends_one_nudge_not_two(sms, enrol):
    p, course, phone = enrol(day1=DAY1)
    sms.tick(at(2, "10:30"))  # down since before the 08:00 reminder

    assert kinds(sms, phone) == ["followup"]


def test_no_dose_reminder_on_a_held_day(app, sms, enrol, world, session, cfg):
    p, course, phone = enrol(day1=DAY1)
    decisions.sign_decision(session, cfg, course=course, signer=world.staff["investigator_a"], effective_day=3,
                            dose_mg=0, current_dose_mg=5, now=at(1, "12:00"))
    session.commit()

    sms.tick(at(2, "08:00"))
    sms.tick(at(2, "10:00"))

    assert kinds(sms, phone) == []


def test_it_sends_nothing_after_opt_out(sms, enrol, session):
    p, course, phone = enrol(day1=DAY1)
    p.sms_opt_in = False
    session.add(p)
    session.commit()

    for hhmm in ("07:00", "08:00", "10:00", "19:00"):
        sms.tick(at(6, hhmm))  # course day 7: a draw day as well

    assert sms.sent_to(phone) == []


def test_a_message_queued_before_opt_out_is_dropped(sms, enrol, session):
    p, course, phone = enrol_with_a_reminder_in_quiet_hours(enrol, session, "06:30")
    sms.tick(at(2, "06:30"))
    p.sms_opt_in = False
    session.add(p)
    session.commit()

    sms.tick(at(2, "07:00"))

    assert sms.sent_to(phone) == []
    assert row(session, f"dose:{course.id}:3").status == "dropped"


@pytest.mark.parametrize("status", ["withdrawn", "completed"])
def test_it_sends_nothing_and_flags_nothing_after_withdrawal_or_completion(sms, enrol, session, status):
    p, course, phone = enrol(day1=DAY1)
    p.status = status
    session.add(p)
    session.commit()

    for day in (2, 3, 4):
        for hhmm in ("08:00", "10:00", "13:00"):
            sms.tick(at(day, hhmm))

    assert sms.sent_to(phone) == []
    assert session.exec(select(Flag).where(Flag.participant_id == p.id)).all() == []


def test_blood_draw_reminders_come_the_evening_before_and_the_morning_of(sms, enrol, twilio):
    p, course, phone = enrol(day1=DAY1)  # day 7 is 6 December
    sms.tick(at(5, "19:00"))
    sms.tick(at(6, "07:00"))

    sids = {m.provider_id: m.kind for m in sms.outbox()}
    evening, morning = [m["body"] for m in sms.sent_to(phone) if sids[m["sid"]].startswith("draw")]
    assert "tomorrow" in evening and "today" in morning


def test_a_missed_dose_is_flagged_at_the_cutoff_and_not_before(sms, enrol, session):
    p, course, phone = enrol(day1=DAY1)
    sms.tick(at(3, "11:30"))  # day 3's cutoff is noon on day 4
    assert session.exec(select(Flag).where(Flag.key == f"missed:{course.id}:3")).first() is None

    sms.tick(at(3, "12:00"))
    sms.tick(at(3, "12:30"))

    flags = session.exec(select(Flag).where(Flag.key == f"missed:{course.id}:3")).all()
    assert [f.kind for f in flags] == ["missed_dose"]


def test_a_blood_count_not_entered_by_noon_after_the_draw_window_is_flagged(sms, enrol, session):
    """The draw window (study.toml draw_window_days = 1) lets day 8 cover day 7's draw, so the flag
    waits for noon after day 8: the grid and the scheduler read the same rule (issue 9, problem 3)."""
    p, course, phone = enrol(day1=DAY1)
    sms.tick(at(8, "11:59"))
    assert session.exec(select(Flag.kind).where(Flag.key == f"overdue_lab:{course.id}:7")).first() is None
    sms.tick(at(8, "12:00"))  # day 7 was 6 December; day 8, the window's last day, was 7 December

    assert session.exec(select(Flag.kind).where(Flag.key == f"overdue_lab:{course.id}:7")).one() == "overdue_lab"


def test_a_danger_symptom_texts_the_on_call_phone_at_once_even_at_night(app, sms, enrol, session, world, cfg):
    p, course, phone = enrol(day1=DAY1)
    symptoms.report_symptoms(session, cfg, participant=p, symptoms=[{"key": "blood_in_urine", "severity": "severe"}],
                             noticed_at=at(2, "23:00"), client_key="s1", source="participant", now=at(2, "23:10"))
    session.commit()

    sms.tick(at(2, "23:10"))
    sms.tick(at(2, "23:20"))

    [alert] = sms.sent_to(world.sites["A"].on_call_phone)
    assert p.study_number in alert["body"] and "blood" not in alert["body"].lower()


def test_a_critical_platelet_count_texts_the_on_call_phone_within_one_tick(app, sms, enrol, session, world, cfg):
    # Issue 10, finding 6: PLT ≤ rules.urgent_at_or_below escalates like a danger symptom.
    p, course, phone = enrol(day1=DAY1)
    labs.record_lab(session, cfg, course=course, course_day=7, drawn_on=DAY1 + timedelta(days=6), plt=15,
                    staff_id=world.staff["nurse_a"].id, now=at(7, "23:00"))
    session.commit()

    sms.tick(at(7, "23:10"))
    sms.tick(at(7, "23:20"))

    [alert] = sms.sent_to(world.sites["A"].on_call_phone)
    assert p.study_number in alert["body"] and "血小板计数处于危急值" in alert["body"]


def test_a_corrected_count_that_is_critical_texts_the_on_call_phone(app, sms, enrol, session, world, cfg):
    # The alert keys off the urgent_plt flag, so it follows whichever lab service raised it.
    p, course, phone = enrol(day1=DAY1)
    raise_flag(session, key="urgent_plt:corrected-7", kind="urgent_plt", site_id=p.site_id,
               participant_id=p.id, now=at(7, "10:05"), detail="PLT 15×10⁹/L on day 7 (corrected)")
    session.commit()

    sms.tick(at(7, "10:10"))

    assert len(sms.sent_to(world.sites["A"].on_call_phone)) == 1


def test_a_voided_course_sends_no_reminder_and_raises_no_missed_flag(app, sms, enrol, session, world):
    # Issue 10, finding 7: a course entered in error must not text anyone.
    p, course, phone = enrol(day1=DAY1)
    courses.void_course(session, course=course, reason="wrong infusion date", signer=world.staff["investigator_a"],
                        now=at(1, "20:00"))
    session.commit()

    sms.tick(at(2, "08:00"))
    sms.tick(at(3, "12:30"))

    assert sms.sent_to(phone) == []
    assert session.exec(select(Flag).where(Flag.participant_id == p.id)).all() == []


def test_days_after_an_early_end_are_neither_reminded_nor_missed(app, sms, enrol, session, world, cfg):
    p, course, phone = enrol(day1=DAY1)
    courses.end_course_early(session, cfg, course=course, last_day=2, reason="PLT recovered",
                             signer=world.staff["investigator_a"], now=at(1, "20:00"))
    session.commit()

    sms.tick(at(2, "08:00"))  # day 3
    sms.tick(at(3, "12:30"))  # day 3's cutoff has passed

    assert kinds(sms, phone) == []
    assert session.exec(select(Flag).where(Flag.key == f"missed:{course.id}:3")).first() is None


def test_the_daily_digest_goes_to_the_site_number_once_with_counts(app, sms, enrol, session):
    app.config["STAFF_SMS_LANGUAGE"] = "en"
    enrol(day1=DAY1)
    sms.tick(at(2, "08:00"))
    sms.tick(at(2, "08:30"))
    sms.tick(at(2, "09:00"))

    digests = [m for m in sms.outbox() if m.kind == "digest" and m.site_id == 1]
    assert [m.dedupe_key for m in digests] == ["digest:1:2026-12-02"]
    assert "3 open flags" in digests[0].body and "missed doses 3" in digests[0].body
    assert digests[0].status == "sent"


def test_a_signed_dose_change_is_texted_to_the_participant(app, sms, enrol, world, session, cfg):
    p, course, phone = enrol(day1=DAY1)
    with app.test_request_context():
        decision = decisions.sign_decision(session, cfg, course=course, signer=world.staff["investigator_a"],
                                           effective_day=4, dose_mg=7.5, current_dose_mg=5, now=at(2, "14:00"))
        queue_dose_change_notice(session, app.extensions["diary.cipher"], p, course, decision, at(2, "14:00"))
        session.commit()

    sms.tick(at(2, "14:00"))

    [notice] = [m.body for m in sms.outbox() if m.kind == "dose_change" and m.status == "sent"]
    assert "day 4" in notice and "mg" not in notice  # SMS_SHOW_DOSE is off by default


def test_a_dose_change_signed_at_night_waits_for_the_morning(app, sms, enrol, world, session, cfg):
    p, course, phone = enrol(day1=DAY1)
    with app.test_request_context():
        decision = decisions.sign_decision(session, cfg, course=course, signer=world.staff["investigator_a"],
                                           effective_day=5, dose_mg=0, current_dose_mg=5, now=at(2, "23:00"))
        queue_dose_change_notice(session, app.extensions["diary.cipher"], p, course, decision, at(2, "23:00"))
        session.commit()

    assert row(session, f"dose_change:{decision.id}").not_before == at(3, "07:00")


def _grid_draws(app, session, now, course_id):
    from diary.services import adherence

    grid = adherence.build_grid(session, app.extensions["diary.study"], now, None)
    [row] = [r for r in grid.rows if r.course_id == course_id]
    return [day for day, _on in row.overdue_draws]


def _overdue_flag(session, course_id, day):
    session.expire_all()
    return session.exec(select(Flag.kind).where(Flag.key == f"overdue_lab:{course_id}:{day}")).first()


@pytest.mark.parametrize("drawn_day", [6, 8])
def test_a_count_drawn_a_day_either_side_covers_the_draw_for_the_grid_and_the_scheduler(
        app, sms, enrol, session, world, clock, drawn_day):
    """Issue 9, problem 3: the grid took ±1 day, the scheduler only the exact day."""
    p, course, phone = enrol(day1=DAY1)
    labs.record_lab(session, app.extensions["diary.study"], course=course, course_day=drawn_day,
                    drawn_on=DAY1 + timedelta(days=drawn_day - 1), plt=140, staff_id=world.staff["nurse_a"].id,
                    now=at(drawn_day, "10:00"))
    session.commit()
    sms.tick(at(9, "12:00"))  # well past day 7's overdue instant (noon after day 8)
    assert _overdue_flag(session, course.id, 7) is None
    assert 7 not in _grid_draws(app, session, at(9, "12:00"), course.id)


def test_a_corrected_count_counts_for_its_new_day_only_in_the_grid_and_the_scheduler(
        app, sms, enrol, session, world, clock):
    """Issue 9, problem 4: the scheduler counted superseded (corrected) rows as drawn. A count
    entered on day 7 and corrected to day 10 leaves day 7 without a count for both."""
    cfg = app.extensions["diary.study"]
    p, course, phone = enrol(day1=DAY1)
    entered = labs.record_lab(session, cfg, course=course, course_day=7, drawn_on=DAY1 + timedelta(days=6),
                              plt=140, staff_id=world.staff["nurse_a"].id, now=at(6, "10:00"))
    session.commit()
    labs.correct_lab(session, cfg, lab=entered, course_day=10, drawn_on=DAY1 + timedelta(days=9), plt=140,
                     staff_id=world.staff["nurse_a"].id, reason="wrong day typed", now=at(9, "10:00"))
    session.commit()
    sms.tick(at(9, "12:00"))
    assert _overdue_flag(session, course.id, 7) == "overdue_lab"
    assert _grid_draws(app, session, at(9, "12:00"), course.id) == [7]
    # Day 10's draw is covered by the corrected row: no flag when its own window has passed.
    sms.tick(at(12, "12:30"))
    assert _overdue_flag(session, course.id, 10) is None
