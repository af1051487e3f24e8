"""Calendar, symptoms and settings pages (issue 3 §3–5)."""

from datetime import time

import pytest
from sqlmodel import select

from diary.models import AuditEvent, Flag, Participant, Site, SymptomReport
from diary.services import enrolment
from tests.web.patient_helpers import csrf, day_url, post


@pytest.fixture
def pa(auth, client, world):
    auth.participant("pa")
    return world.participants["pa"]


# --- calendar ------------------------------------------------------------------------------

def test_the_calendar_lists_the_fourteen_days_with_icon_and_word(client, pa):
    html = client.get("/calendar").get_data(as_text=True)
    assert html.count('class="cal-day') == 14
    assert "Missed" in html  # day 1
    assert "To take" in html  # days 2 and 3
    assert "Coming up" in html
    assert html.count('class="icon" aria-hidden="true"') >= 14


def test_the_calendar_marks_the_blood_draw_days(client, pa):
    html = client.get("/calendar").get_data(as_text=True)
    assert html.count("Blood test day") == 3


def test_the_calendar_shows_taken_and_not_taken_days(client, pa, world):
    token = csrf(client)
    post(client, day_url(world, "pa", 3, "taken"), token)
    post(client, day_url(world, "pa", 2, "not-taken"), token, reason="forgot")
    html = client.get("/calendar").get_data(as_text=True)
    assert "✓</span> Taken" in html and "✕</span> Not taken" in html


def test_a_missed_day_in_the_calendar_comes_with_the_nurse_to_call(client, pa):
    html = client.get("/calendar").get_data(as_text=True)
    assert "please contact your study nurse" in html and "tel:+8659100000000" in html


def test_earlier_courses_can_be_browsed(client, pa, world, session, clock, app):
    participant = session.get(Participant, pa.id)
    later = enrolment.open_course(session, app.extensions["diary.study"], participant=participant,
                                  adc_drug="trastuzumab_deruxtecan", infusion_date=clock.now.date().replace(day=20),
                                  staff_id=world.staff["nurse_a"].id, now=clock.now)
    session.commit()
    html = client.get("/calendar").get_data(as_text=True)
    assert "All your courses" in html and f"/calendar?course={later.id}" in html
    html = client.get(f"/calendar?course={later.id}").get_data(as_text=True)
    assert "Cycle 2" in html


@pytest.mark.parametrize("course", ["abc", "-1", "999999", ""])
def test_a_course_that_is_not_there_is_not_found(client, pa, course):
    assert client.get(f"/calendar?course={course}").status_code == 404


# --- symptoms ------------------------------------------------------------------------------

def test_the_checklist_lists_bleeding_and_clot_signs_from_the_configuration(client, pa, app):
    html = client.get("/symptoms").get_data(as_text=True)
    for symptom in app.extensions["diary.study"].symptoms:
        assert f'value="{symptom.key}"' in html and symptom.label_en in html
    assert "Signs of a blood clot" in html


def test_the_checklist_is_in_chinese_for_a_chinese_participant(client, pa, session):
    participant = session.get(Participant, pa.id)
    participant.language = "zh"
    session.add(participant)
    session.commit()
    assert "牙龈出血" in client.get("/symptoms").get_data(as_text=True)


def _symptoms(client, **answers):
    data = {"symptom": list(answers)} | {f"severity-{k}": v for k, v in answers.items()}
    return post(client, "/symptoms", csrf(client, "/symptoms"), **data)


def test_a_mild_symptom_is_recorded_without_a_flag(client, pa, session):
    r = _symptoms(client, bruising="mild")
    assert r.status_code == 303
    [report] = session.exec(select(SymptomReport)).all()
    assert report.symptoms == [{"key": "bruising", "severity": "mild"}] and not report.danger
    assert session.exec(select(Flag)).all() == []
    assert "Thank you." in client.get("/symptoms").get_data(as_text=True)


def test_a_note_is_kept(client, pa, session):
    data = {"symptom": ["bruising"], "severity-bruising": "mild", "note": "on my left arm"}
    post(client, "/symptoms", csrf(client, "/symptoms"), **data)
    assert session.exec(select(SymptomReport)).one().note == "on my left arm"


def test_a_danger_answer_shows_the_call_now_instruction_and_flags_staff(client, pa, session, world):
    r = _symptoms(client, black_or_bloody_stool="moderate", bruising="mild")
    html = r.get_data(as_text=True)
    assert r.status_code == 200
    assert "Call your study team now" in html
    assert 'href="tel:+8659100000000"' in html and 'href="tel:120"' in html
    assert "Black or bloody stools" in html
    [flag] = session.exec(select(Flag)).all()
    assert flag.kind == "danger_symptom" and flag.participant_id == pa.id and flag.site_id == world.sites["A"].id


def test_a_danger_answer_without_a_severity_is_never_refused(client, pa, session):
    # Issue 10, finding 1: "vomiting blood" ticked and "how bad" left blank.
    r = post(client, "/symptoms", csrf(client, "/symptoms"), symptom=["vomiting_blood", "bruising"])
    assert r.status_code == 200
    assert "Call your study team now" in r.get_data(as_text=True)
    report = session.exec(select(SymptomReport)).one()
    assert report.danger
    assert report.symptoms == [{"key": "vomiting_blood", "severity": "not_stated"},
                               {"key": "bruising", "severity": "not_stated"}]
    assert session.exec(select(Flag)).one().kind == "danger_symptom"


def test_stroke_signs_say_call_the_emergency_number_first_then_the_study_team(client, pa):
    html = _symptoms(client, stroke_signs="severe").get_data(as_text=True)
    assert "<h1" in html and "Call 120 now" in html
    assert html.index('href="tel:120"') < html.index('href="tel:+8659100000000"')


def test_the_emergency_number_is_the_sites_own(client, pa, session, world):
    site = session.get(Site, world.sites["A"].id)
    site.emergency_phone = "999"
    session.add(site)
    session.commit()
    html = _symptoms(client, chest_pain_breathless="severe").get_data(as_text=True)
    assert "Call 999 now" in html and 'href="tel:999"' in html and 'href="tel:120"' not in html


def test_the_danger_screen_stops_only_the_study_tablets(client, pa):
    html = _symptoms(client, black_or_bloody_stool="mild").get_data(as_text=True)
    assert "Do not take any more of your study tablets (hetrombopag)" in html
    assert "Keep taking your other medicines" in html


def test_a_resubmitted_danger_form_records_and_flags_once(client, pa, session):
    token = csrf(client, "/symptoms")
    for _ in range(2):
        post(client, "/symptoms", token, client_key="danger-form-0001",
             symptom=["stroke_signs"], **{"severity-stroke_signs": "severe"})
    assert len(session.exec(select(SymptomReport)).all()) == 1
    assert len(session.exec(select(Flag)).all()) == 1


@pytest.mark.parametrize(("data", "message"), [
    ({}, "Please tick at least one symptom."),
    ({"symptom": ["bruising"]}, "Please say how bad each ticked symptom is."),
    ({"symptom": ["bruising"], "severity-bruising": "terrible"}, "Please say how bad each ticked symptom is."),
    ({"symptom": ["made_up"], "severity-made_up": "mild"}, "Something went wrong."),
])
def test_an_incomplete_report_is_refused_and_changes_nothing(client, pa, session, data, message):
    r = post(client, "/symptoms", csrf(client, "/symptoms"), **data)
    assert r.status_code == 422
    assert message in r.get_data(as_text=True)
    assert session.exec(select(SymptomReport)).all() == []


def test_the_refused_form_keeps_what_was_ticked(client, pa):
    r = post(client, "/symptoms", csrf(client, "/symptoms"), symptom=["bruising", "nosebleed"],
             **{"severity-bruising": "mild"})
    html = r.get_data(as_text=True)
    assert 'value="bruising" checked' in html and 'value="nosebleed" checked' in html


# --- settings ------------------------------------------------------------------------------

def _settings(client, **changes):
    data = {"reminder_time": "08:00", "language": "en", "sms": "on"} | changes
    return post(client, "/settings", csrf(client, "/settings"), **data)


def test_the_reminder_time_is_saved_and_audited(client, pa, session):
    assert _settings(client, reminder_time="07:15").status_code == 303
    session.expire_all()
    assert session.get(Participant, pa.id).reminder_time == "07:15"
    event = session.exec(select(AuditEvent).where(AuditEvent.action == "participant_settings_changed")).one()
    assert event.before == {"reminder_time": "08:00"} and event.after == {"reminder_time": "07:15"}
    assert event.actor == f"participant:{pa.id}"


def test_switching_to_chinese_changes_the_pages_at_once(client, pa, session):
    r = _settings(client, language="zh")
    html = client.get(r.headers["Location"]).get_data(as_text=True)
    assert 'lang="zh-CN"' in html and "设置" in html


def test_sms_opt_out_is_recorded_audited_flagged_and_respected(client, pa, session):
    _settings(client, sms="off")
    session.expire_all()
    assert session.get(Participant, pa.id).sms_opt_in is False
    assert session.exec(select(AuditEvent).where(AuditEvent.action == "sms_opted_out")).one()
    assert session.exec(select(Flag).where(Flag.kind == "opt_out")).one().participant_id == pa.id
    assert 'value="off" checked' in client.get("/settings").get_data(as_text=True)


def test_sms_can_be_switched_back_on(client, pa, session):
    _settings(client, sms="off")
    _settings(client, sms="on")
    session.expire_all()
    assert session.get(Participant, pa.id).sms_opt_in is True
    assert session.exec(select(AuditEvent).where(AuditEvent.action == "sms_opted_in")).one()


def test_saving_unchanged_settings_writes_no_audit_event(client, pa, session):
    _settings(client)
    assert session.exec(select(AuditEvent).where(AuditEvent.action == "participant_settings_changed")).all() == []


@pytest.mark.parametrize("changes", [
    {"reminder_time": "7am"}, {"reminder_time": "24:00"}, {"reminder_time": ""},
    {"language": "fr"}, {"sms": "maybe"},
])
def test_bad_settings_are_refused_and_change_nothing(client, pa, session, changes):
    r = _settings(client, **({"reminder_time": "07:30"} | changes))
    assert r.status_code == 422
    session.expire_all()
    participant = session.get(Participant, pa.id)
    assert (participant.reminder_time, participant.language, participant.sms_opt_in) == ("08:00", "en", True)


@pytest.mark.parametrize("reminder_time", ["22:00", "23:30", "21:30", "00:00", "06:59"])
def test_a_reminder_time_in_quiet_hours_is_refused_and_the_window_is_named(client, pa, session, reminder_time):
    r = _settings(client, reminder_time=reminder_time)
    assert r.status_code == 422
    html = r.get_data(as_text=True)
    assert "No reminders are sent between 21:30 and 07:00" in html
    assert 'aria-invalid="true"' in html
    session.expire_all()
    assert session.get(Participant, pa.id).reminder_time == "08:00"


@pytest.mark.parametrize("reminder_time", ["07:00", "21:29"])
def test_a_reminder_time_at_the_edge_of_quiet_hours_is_saved(client, pa, session, reminder_time):
    assert _settings(client, reminder_time=reminder_time).status_code == 303
    session.expire_all()
    assert session.get(Participant, pa.id).reminder_time == reminder_time


def _site_quiet_hours(session, world, start, end):
    site = session.get(Site, world.sites["A"].id)
    site.quiet_start, site.quiet_end = start, end
    session.add(site)
    session.commit()


def test_a_reminder_time_in_the_sites_own_quiet_hours_is_refused_and_that_window_is_named(
        client, pa, world, session):
    _site_quiet_hours(session, world, time(6, 0), time(8, 30))  # site A sleeps in
    r = _settings(client, reminder_time="08:00")
    assert r.status_code == 422
    assert "No reminders are sent between 06:00 and 08:30" in r.get_data(as_text=True)
    # The study's 21:30–07:00 no longer applies to site A: a 22:00 reminder is fine there.
    assert _settings(client, reminder_time="22:00").status_code == 303
    session.expire_all()
    assert session.get(Participant, pa.id).reminder_time == "22:00"


def test_the_quiet_hours_refusal_is_in_chinese_for_a_chinese_participant(client, pa, session):
    _settings(client, language="zh")
    r = _settings(client, language="zh", reminder_time="23:30")
    assert r.status_code == 422
    assert "21:30" in r.get_data(as_text=True) and "免打扰" in r.get_data(as_text=True)
