"""The today page: what to take, one tap to record it, undo, not taken, held days (issue 3 §1)."""

import pytest

from diary.models import DoseDecision
from tests.web.patient_helpers import csrf, day_url, logs, post


@pytest.fixture
def pa(auth, client, world):
    auth.participant("pa")
    return world.participants["pa"]


def test_the_today_page_says_the_course_day_cycle_mg_and_tablets(client, pa):
    html = client.get("/").get_data(as_text=True)
    assert "Day 3 of 14" in html
    assert "Cycle 1" in html
    assert "Take 5 mg hetrombopag (2 tablets) today, once." in html
    assert 'I took it</button>' in html


def test_the_today_page_shows_the_administration_advice_from_the_configuration(client, pa, app):
    html = client.get("/").get_data(as_text=True)
    for line in app.extensions["diary.study"].advice("en"):
        assert line.replace("'", "&#39;") in html


def test_one_tap_records_the_dose_with_the_time_and_redirects_without_javascript(client, pa, world, session, clock):
    r = post(client, day_url(world, "pa", 3, "taken"), csrf(client))
    assert r.status_code == 303 and r.headers["Location"] == "/"
    [log] = logs(session)
    assert (log.outcome, log.course_day, log.source) == ("taken", 3, "participant")
    assert log.taken_at == clock.now and log.received_at == clock.now
    assert "You took it at 09:00." in client.get("/").get_data(as_text=True)


def test_an_htmx_tap_gets_back_only_the_day_card(client, pa, world):
    r = post(client, day_url(world, "pa", 3, "taken"), csrf(client), htmx=True)
    html = r.get_data(as_text=True)
    assert r.status_code == 200
    assert html.lstrip().startswith('<section class="day-card card-taken"')
    assert "<html" not in html and "You took it at 09:00." in html
    assert "HX-Request" in r.headers["Vary"]


def test_a_boosted_htmx_request_gets_the_whole_page(client, pa):
    html = client.get("/", headers={"HX-Request": "true", "HX-Boosted": "true"}).get_data(as_text=True)
    assert "<html" in html


def test_the_empty_stomach_tap_is_recorded(client, pa, world, session):
    post(client, day_url(world, "pa", 3, "taken"), csrf(client), fasting="yes")
    assert logs(session)[0].fasting == "yes"
    assert "On an empty stomach." in client.get("/").get_data(as_text=True)


def test_without_the_empty_stomach_tap_fasting_is_unknown_not_false(client, pa, world, session):
    post(client, day_url(world, "pa", 3, "taken"), csrf(client))
    assert logs(session)[0].fasting is None


def test_a_double_tap_of_the_same_form_records_once(client, pa, world, session):
    token = csrf(client)
    for _ in range(2):
        post(client, day_url(world, "pa", 3, "taken"), token, client_key="same-form-key-1")
    assert len(logs(session)) == 1


def test_a_second_taken_from_another_form_adds_no_record(client, pa, world, session):
    token = csrf(client)
    post(client, day_url(world, "pa", 3, "taken"), token)
    post(client, day_url(world, "pa", 3, "taken"), token)
    assert len(logs(session)) == 1


def test_after_taking_it_the_page_says_not_to_take_another_dose(client, pa, world):
    post(client, day_url(world, "pa", 3, "taken"), csrf(client))
    html = client.get("/").get_data(as_text=True)
    assert "Do not take another dose for this day." in html
    assert "I took it</button>" not in html


def test_undo_is_offered_for_the_configured_minutes_and_supersedes(client, pa, world, session, clock):
    post(client, day_url(world, "pa", 3, "taken"), csrf(client))
    html = client.get("/").get_data(as_text=True)
    assert "You can undo this until 09:05." in html
    clock.advance(minutes=4)
    r = post(client, day_url(world, "pa", 3, "undo"), csrf(client))
    assert r.status_code == 303
    first, undo = logs(session)
    assert undo.outcome == "retracted" and undo.supersedes_id == first.id
    assert "I took it</button>" in client.get("/").get_data(as_text=True)


def test_undo_is_refused_after_the_configured_minutes_and_changes_nothing(client, pa, world, session, clock):
    post(client, day_url(world, "pa", 3, "taken"), csrf(client))
    clock.advance(minutes=6)
    assert "Undo</button>" not in client.get("/").get_data(as_text=True)
    r = post(client, day_url(world, "pa", 3, "undo"), csrf(client))
    assert r.status_code == 422
    assert "too late to undo" in r.get_data(as_text=True)
    assert [log.outcome for log in logs(session)] == ["taken"]


def test_not_taken_asks_for_a_reason_from_the_configured_list(client, pa, world):
    html = client.get(day_url(world, "pa", 3, "not-taken")).get_data(as_text=True)
    for code in ("forgot", "vomited", "side_effects", "doctor_said", "other"):
        assert f'value="{code}"' in html
    assert "I vomited" in html


def test_the_reason_form_comes_as_a_fragment_for_htmx(client, pa, world):
    html = client.get(day_url(world, "pa", 3, "not-taken"), headers={"HX-Request": "true"}).get_data(as_text=True)
    assert "<html" not in html and "Why did you not take it?" in html


def test_not_taken_with_a_reason_is_recorded(client, pa, world, session):
    r = post(client, day_url(world, "pa", 3, "not-taken"), csrf(client), reason="vomited")
    assert r.status_code == 303
    [log] = logs(session)
    assert (log.outcome, log.reason, log.taken_at) == ("not_taken", "vomited", None)
    html = client.get("/").get_data(as_text=True)
    assert "Not taken. Reason: vomited." in html
    assert "Do not take an extra dose to make up for it." in html


def test_not_taken_reads_as_a_record_in_chinese_not_a_first_person_button(client, pa, world, session):
    """Issue 10, wording: not 您没有服药：我吐了."""
    from diary.models import Participant

    session.get(Participant, pa.id).language = "zh"
    session.commit()
    post(client, day_url(world, "pa", 3, "not-taken"), csrf(client), reason="vomited")
    html = client.get("/").get_data(as_text=True)
    assert "未服药。原因：呕吐。" in html and "我吐了。" not in html


@pytest.mark.parametrize("reason", ["", "lazy", None])
def test_not_taken_without_a_valid_reason_changes_nothing(client, pa, world, session, reason):
    data = {} if reason is None else {"reason": reason}
    r = post(client, day_url(world, "pa", 3, "not-taken"), csrf(client), **data)
    assert r.status_code == 422
    assert "Please choose a reason." in r.get_data(as_text=True)
    assert logs(session) == []


def test_a_held_day_says_take_none_and_that_the_doctor_decided(client, pa, world, session):
    session.add(DoseDecision(course_id=world.courses["pa"].id, effective_day=3, dose_mg=0, action="hold",
                             decided_by=world.staff["investigator_a"].id))
    session.commit()
    html = client.get("/").get_data(as_text=True)
    assert "Do not take your study tablets (hetrombopag) today." in html
    assert "Your study doctor decided to pause the medicine." in html
    assert "I took it</button>" not in html


def test_a_held_day_cannot_be_logged_as_not_taken(client, pa, world, session):
    """Nothing was prescribed, so there is no dose to skip (tablets taken anyway: test_dose_on_held_day)."""
    session.add(DoseDecision(course_id=world.courses["pa"].id, effective_day=3, dose_mg=0, action="hold",
                             decided_by=world.staff["investigator_a"].id))
    session.commit()
    r = post(client, day_url(world, "pa", 3, "not-taken"), csrf(client), reason="forgot")
    assert r.status_code == 422
    assert logs(session) == []


def test_a_blood_draw_day_is_marked(client, pa, clock):
    assert "Blood test day" not in client.get("/").get_data(as_text=True)
    clock.advance(days=4)  # day 7
    html = client.get("/").get_data(as_text=True)
    assert "Day 7 of 14" in html and "Blood test day" in html


def test_a_changed_dose_shows_the_new_mg_and_tablets(client, pa, world, session):
    session.add(DoseDecision(course_id=world.courses["pa"].id, effective_day=3, dose_mg=7.5, action="increase",
                             decided_by=world.staff["investigator_a"].id))
    session.commit()
    assert "Take 7.5 mg hetrombopag (3 tablets) today, once." in client.get("/").get_data(as_text=True)


def test_the_site_phone_is_a_tap_to_call_link(client, pa, world):
    assert 'href="tel:+8659100000000"' in client.get("/").get_data(as_text=True)


def test_between_courses_the_page_says_no_tablets(client, pa, clock):
    clock.advance(days=20)
    html = client.get("/").get_data(as_text=True)
    assert "No study tablets today" in html and "I took it" not in html


def test_a_day_page_of_a_future_day_offers_nothing_to_record(client, pa, world):
    html = client.get(day_url(world, "pa", 5)).get_data(as_text=True)
    assert "Nothing to do yet." in html and "I took it" not in html


def test_a_future_day_cannot_be_logged(client, pa, world, session):
    r = post(client, day_url(world, "pa", 5, "taken"), csrf(client))
    assert r.status_code == 422
    assert logs(session) == []


@pytest.mark.parametrize("day", [0, 15, 99])
def test_a_day_outside_the_course_is_not_found(client, pa, world, day):
    assert client.get(day_url(world, "pa", day)).status_code == 404


def test_pages_carry_no_inline_script_or_style(client, pa, world, clock):
    post(client, day_url(world, "pa", 3, "taken"), csrf(client))
    for url in ("/", "/calendar", "/symptoms", "/settings", day_url(world, "pa", 2),
                day_url(world, "pa", 3, "not-taken")):
        html = client.get(url).get_data(as_text=True)
        assert "style=" not in html, url
        assert "<style" not in html, url
        assert "<script>" not in html and "onclick" not in html, url


def test_the_time_shown_is_the_participants_local_time(client, pa, world, clock):
    clock.advance(hours=-8, minutes=30)  # 01:30 local time on the same day
    post(client, day_url(world, "pa", 3, "taken"), csrf(client))
    assert "You took it at 01:30." in client.get("/").get_data(as_text=True)


def test_tablet_counts_are_translated_in_chinese(client, pa, session):
    from diary.models import Participant

    participant = session.get(Participant, pa.id)
    participant.language = "zh"
    session.add(participant)
    session.commit()
    html = client.get("/").get_data(as_text=True)
    assert "今天服用海曲泊帕 5 毫克（2 片），服一次。" in html and "tablets" not in html
