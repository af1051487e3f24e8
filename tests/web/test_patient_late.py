"""Late logging with the stated time until the cutoff; missed days after it (issue 3 §2)."""

import re

import pytest

from tests.web.patient_helpers import csrf, day_url, logs, post


@pytest.fixture
def pa(auth, client, world):
    auth.participant("pa")
    return world.participants["pa"]


def test_an_unrecorded_earlier_day_is_offered_for_late_logging_on_the_today_page(client, pa):
    html = client.get("/").get_data(as_text=True)
    assert "Not recorded yet" in html
    assert "You can still record this day until 12:00" in html
    assert 'name="taken_time"' in html
    assert "Record this only if you already took it. If you missed a dose, skip it and never take two doses in " \
           "one day." in html


def test_a_late_dose_is_recorded_with_the_stated_time_and_the_received_time(client, pa, world, session, clock):
    r = post(client, day_url(world, "pa", 2, "taken"), csrf(client), taken_on="2026-11-30", taken_time="07:45")
    assert r.status_code == 303 and r.headers["Location"] == day_url(world, "pa", 2)
    [log] = logs(session)
    assert log.course_day == 2
    assert log.taken_at.isoformat() == "2026-11-29T23:45:00+00:00"  # 07:45 in Shanghai
    assert log.received_at == clock.now


def test_a_late_dose_may_be_stated_just_after_midnight_on_the_next_day(client, pa, world, session):
    r = post(client, day_url(world, "pa", 2, "taken"), csrf(client), taken_on="2026-12-01", taken_time="00:20")
    assert r.status_code == 303
    assert logs(session)[0].taken_at.isoformat() == "2026-11-30T16:20:00+00:00"


def test_the_taken_time_of_today_may_be_earlier_than_now(client, pa, world, session):
    post(client, day_url(world, "pa", 3, "taken"), csrf(client), taken_on="2026-12-01", taken_time="07:05")
    assert logs(session)[0].taken_at.isoformat() == "2026-11-30T23:05:00+00:00"


@pytest.mark.parametrize(("taken_on", "taken_time", "message"), [
    ("2026-12-01", "11:30", "That time has not come yet."),
    ("2026-11-29", "23:00", "That time is before this day began."),
    ("2026-11-30", "7 o'clock", "Please enter the time as hours and minutes"),
    ("yesterday", "07:00", "Please enter the time as hours and minutes"),
    ("2026-11-30", "25:00", "Please enter the time as hours and minutes"),
])
def test_an_impossible_time_is_refused_with_a_clear_message_and_changes_nothing(
        client, pa, world, session, taken_on, taken_time, message):
    r = post(client, day_url(world, "pa", 2, "taken"), csrf(client), taken_on=taken_on, taken_time=taken_time)
    assert r.status_code == 422
    assert message in r.get_data(as_text=True)
    assert logs(session) == []


def test_the_refusal_comes_back_in_the_card_for_htmx(client, pa, world, session):
    r = post(client, day_url(world, "pa", 2, "taken"), csrf(client), htmx=True,
             taken_on="2026-12-01", taken_time="23:00")
    html = r.get_data(as_text=True)
    assert r.status_code == 422 and "<html" not in html and "That time has not come yet." in html


def test_a_late_not_taken_is_recorded(client, pa, world, session):
    post(client, day_url(world, "pa", 2, "not-taken"), csrf(client), reason="forgot")
    assert [(log.course_day, log.reason) for log in logs(session)] == [(2, "forgot")]


def test_after_the_cutoff_the_day_is_missed_with_the_nurse_to_call(client, pa, world):
    html = client.get(day_url(world, "pa", 1)).get_data(as_text=True)
    assert "Missed" in html
    assert "Please contact your study nurse." in html
    assert 'href="tel:+8659100000000"' in html
    assert 'name="taken_time"' not in html


def test_a_recent_miss_is_shown_on_the_today_page(client, pa, clock):
    clock.advance(hours=4)  # 13:00: day 2's cutoff (noon) has passed
    html = client.get("/").get_data(as_text=True)
    assert "Day 2 was not recorded" in html
    assert "Not recorded yet" not in html


def test_after_the_cutoff_logging_is_refused_and_changes_nothing(client, pa, world, session):
    r = post(client, day_url(world, "pa", 1, "taken"), csrf(client), taken_on="2026-11-29", taken_time="08:00")
    assert r.status_code == 422
    assert "can no longer be changed" in r.get_data(as_text=True)
    assert logs(session) == []


def test_every_mention_of_a_double_or_extra_dose_forbids_it(client, pa, world, app):
    pages = ["/", "/calendar", day_url(world, "pa", 1), day_url(world, "pa", 2)]
    for url in pages:
        text = re.sub(r"<[^>]+>", " ", client.get(url).get_data(as_text=True)).lower()
        sentences = [s for s in re.split(r"[.!?\n]", text)
                     if "double" in s or "extra dose" in s or "two doses" in s]
        assert sentences, url
        for sentence in sentences:
            assert "never" in sentence or "do not" in sentence, (url, sentence)
