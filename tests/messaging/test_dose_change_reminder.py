"""Issue 10, finding 8: the dose reminder after a signed change says that the dose changed, until the
participant has acknowledged it (and on the day the change takes effect)."""

from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo

import pytest

from diary.messaging import texts
from diary.messaging.gateway import segment_info
from diary.services import decisions

SHANGHAI = ZoneInfo("Asia/Shanghai")
DAY1 = date(2026, 11, 30)  # course day 3 on 2 December


def at(day: int, hhmm: str) -> datetime:
    hours, minutes = map(int, hhmm.split(":"))
    return datetime(2026, 12, day, hours, minutes, tzinfo=SHANGHAI).astimezone(UTC)


def reminder(sms, course, day):
    [body] = [m.body for m in sms.outbox() if m.dedupe_key == f"dose:{course.id}:{day}"]
    return body


@pytest.fixture
def signed(app, session, world):
    def sign(course, *, day, mg, current=5.0, now):
        decision = decisions.sign_decision(session, app.extensions["diary.study"], course=course,
                                           signer=world.staff["investigator_a"], effective_day=day, dose_mg=mg,
                                           current_dose_mg=current, now=now)
        session.commit()
        return decision

    return sign


def test_the_next_reminder_says_the_dose_changed(sms, enrol, signed):
    p, course, phone = enrol(day1=DAY1)
    signed(course, day=3, mg=7.5, now=at(1, "15:00"))

    sms.tick(at(2, "08:00"))

    assert "your dose has changed" in reminder(sms, course, 3)


def test_with_the_dose_shown_the_reminder_gives_the_new_dose(sms, enrol, signed):
    p, course, phone = enrol(day1=DAY1)
    signed(course, day=3, mg=7.5, now=at(1, "15:00"))

    sms.tick(at(2, "08:00"), show_dose=True)

    assert reminder(sms, course, 3).startswith("Study diary: your dose has changed. Today take 7.5 mg (3 tablets)")


def test_it_keeps_saying_so_until_the_participant_acknowledges_it(sms, enrol, signed, session):
    p, course, phone = enrol(day1=DAY1)
    change = signed(course, day=3, mg=7.5, now=at(1, "15:00"))
    sms.tick(at(2, "08:00"))
    sms.tick(at(3, "08:00"))  # day 4, still not acknowledged
    decisions.acknowledge_change(session, participant=p, decision_id=change.id, now=at(3, "12:00"))
    session.commit()

    sms.tick(at(4, "08:00"))

    assert "your dose has changed" in reminder(sms, course, 4)
    assert "your dose has changed" not in reminder(sms, course, 5)


def test_on_the_day_a_change_takes_effect_the_reminder_says_so_even_if_acknowledged(sms, enrol, signed, session):
    p, course, phone = enrol(day1=DAY1)
    change = signed(course, day=4, mg=7.5, now=at(1, "15:00"))
    decisions.acknowledge_change(session, participant=p, decision_id=change.id, now=at(1, "16:00"))
    session.commit()

    sms.tick(at(2, "08:00"))
    sms.tick(at(3, "08:00"))

    assert "your dose has changed" not in reminder(sms, course, 3)  # still the old dose that day
    assert "your dose has changed" in reminder(sms, course, 4)


def test_a_continue_decision_changes_nothing_in_the_reminder(sms, enrol, signed):
    p, course, phone = enrol(day1=DAY1)
    signed(course, day=3, mg=5.0, now=at(1, "15:00"))

    sms.tick(at(2, "08:00"))

    assert "changed" not in reminder(sms, course, 3)


@pytest.mark.any_db
@pytest.mark.parametrize("lang", ["en", "zh"])
@pytest.mark.parametrize("show_dose", [False, True])
def test_the_changed_reminder_fits_one_segment_and_names_no_drug(app, lang, show_dose):
    with app.app_context():
        text = texts.dose_reminder_changed(lang, mg=12.5, tablets=5, show_dose=show_dose)

    assert segment_info(text)[1] == 1
    assert "hetrombopag" not in text.lower() and "海曲泊帕" not in text
    if lang == "zh":
        assert text.startswith("研究日记：您的剂量已调整") and len(text) <= 70
