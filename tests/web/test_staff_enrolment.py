"""Screening, enrolment from an eligible screening, cycles, and the end of participation."""

from datetime import time, timedelta

import pytest
from sqlmodel import select

from diary.models import AuditEvent, Course, Message, Participant, Screening, Site
from tests.conftest import PASSWORD
from tests.web.staff_helpers import (
    ELIGIBLE,
    english,  # noqa: F401 - fixture
    favourable_answers,
)

pytestmark = pytest.mark.usefixtures("english")


def screening_form(auth, world, clock, **overrides):
    data = {"csrf_token": auth.csrf("/staff/screenings/new"), "screening_number": "s-a-9",
            "site_id": str(world.sites["A"].id), "cohort": "primary",
            "screened_on": (clock.now + timedelta(hours=8)).date().isoformat(), "password": PASSWORD}
    for name, value in ELIGIBLE.as_dict().items():
        if isinstance(value, bool):
            value = "yes" if value else "no"
        data[name] = "" if value is None else str(value)
    for key, answer in favourable_answers().items():
        data[f"answer-{key}"] = "yes" if answer else "no"
    data.update(overrides)
    return data


def test_a_signed_screening_stores_the_outcome_and_writes_an_audit_event(client, auth, world, clock, session):
    auth.staff("nurse_a")
    r = client.post("/staff/screenings/new", data=screening_form(auth, world, clock))
    assert r.status_code == 302
    sc = session.exec(select(Screening)).one()
    assert sc.eligible and sc.failed_criteria == [] and sc.screening_number == "S-A-9"
    assert sc.signed_by == world.staff["nurse_a"].id
    event = session.exec(select(AuditEvent).where(AuditEvent.action == "screening_signed")).one()
    assert event.entity_id == str(sc.id) and event.after["eligible"] is True
    html = client.get(r.headers["Location"]).get_data(as_text=True)
    assert "Eligible" in html and "88.9 mL/min" in html


def test_the_screening_page_lists_every_failed_criterion(client, auth, world, clock, session):
    auth.staff("nurse_a")
    data = screening_form(auth, world, clock, age_years="80", plt="8", **{"answer-ex7_thrombosis": "yes"})
    del data["answer-in9_consent"]
    r = client.post("/staff/screenings/new", data=data)
    sc = session.exec(select(Screening)).one()
    assert set(sc.failed_criteria) == {"in1_age", "ex1_plt", "ex7_thrombosis", "in9_consent"}
    html = client.get(r.headers["Location"]).get_data(as_text=True)
    assert "Not eligible" in html
    for label in ("I1", "E1", "E7", "I9"):
        assert label in html
    assert "Only an eligible screening can lead to enrolment." in html


def test_a_wrong_password_signs_nothing(client, auth, world, clock, session):
    auth.staff("nurse_a")
    r = client.post("/staff/screenings/new", data=screening_form(auth, world, clock, password="wrong"))
    assert r.status_code == 401
    assert session.exec(select(Screening)).all() == []


def test_an_implausible_value_is_refused_with_a_message(client, auth, world, clock, session):
    auth.staff("nurse_a")
    r = client.post("/staff/screenings/new", data=screening_form(auth, world, clock, weight_kg="6000"))
    assert r.status_code == 400
    assert "outside the plausible range" in r.get_data(as_text=True)
    assert session.exec(select(Screening)).all() == []


def test_enrolment_from_an_eligible_screening_shows_the_activation_link(client, auth, world, clock, session):
    auth.staff("nurse_a")
    client.post("/staff/screenings/new", data=screening_form(auth, world, clock))
    sc = session.exec(select(Screening)).one()
    r = client.post(f"/staff/screenings/{sc.id}/enrol", data={
        "csrf_token": auth.csrf("/staff/"), "study_number": "a-007", "phone": "138 0000 7777",
        "language": "zh", "reminder_time": "07:30", "timezone": ""})
    assert r.status_code == 200
    html = r.get_data(as_text=True)
    assert "/activate/" in html and "<svg" in html
    p = session.exec(select(Participant).where(Participant.study_number == "A-007")).one()
    assert p.screening_id == sc.id and p.cohort == "primary" and p.site_id == world.sites["A"].id


def test_enrolment_needs_an_eligible_screening(client, auth, world, clock, session):
    auth.staff("nurse_a")
    client.post("/staff/screenings/new", data=screening_form(auth, world, clock, plt="5"))
    sc = session.exec(select(Screening)).one()
    r = client.post(f"/staff/screenings/{sc.id}/enrol", data={
        "csrf_token": auth.csrf("/staff/"), "study_number": "A-008", "phone": "13800008888",
        "language": "zh", "reminder_time": "08:00"})
    assert r.status_code == 400
    assert session.exec(select(Participant).where(Participant.study_number == "A-008")).first() is None


def test_a_screening_leads_to_one_enrolment_only(client, auth, world, clock, session):
    auth.staff("nurse_a")
    client.post("/staff/screenings/new", data=screening_form(auth, world, clock))
    sc = session.exec(select(Screening)).one()
    for number, phone in (("A-1", "13800001234"), ("A-2", "13800005678")):
        client.post(f"/staff/screenings/{sc.id}/enrol", data={
            "csrf_token": auth.csrf("/staff/"), "study_number": number, "phone": phone, "language": "zh",
            "reminder_time": "08:00"})
    assert len(session.exec(select(Participant).where(Participant.screening_id == sc.id)).all()) == 1


def test_an_invalid_phone_number_is_refused(client, auth, world, clock, session):
    auth.staff("nurse_a")
    client.post("/staff/screenings/new", data=screening_form(auth, world, clock))
    sc = session.exec(select(Screening)).one()
    r = client.post(f"/staff/screenings/{sc.id}/enrol", data={
        "csrf_token": auth.csrf("/staff/"), "study_number": "A-3", "phone": "12345", "language": "zh",
        "reminder_time": "08:00"})
    assert r.status_code == 400 and "not a valid mobile number" in r.get_data(as_text=True)


def test_a_new_cycle_starts_the_day_after_the_infusion_by_default(client, auth, world, clock, session):
    auth.staff("nurse_a")
    pa = world.participants["pa"]
    infusion = world.courses["pa"].start_date + timedelta(days=20)
    client.post(f"/staff/participants/{pa.id}/courses", data={
        "csrf_token": auth.csrf("/staff/"), "adc_drug": "sacituzumab_govitecan",
        "infusion_date": infusion.isoformat(), "start_date": ""})
    course = session.exec(select(Course).where(Course.participant_id == pa.id, Course.cycle_number == 2)).one()
    assert course.start_date == infusion + timedelta(days=1) and course.adc_drug == "sacituzumab_govitecan"


def test_a_cycle_may_start_on_an_explicit_day(client, auth, world, clock, session):
    auth.staff("nurse_a")
    pa = world.participants["pa"]
    infusion = world.courses["pa"].start_date + timedelta(days=20)
    client.post(f"/staff/participants/{pa.id}/courses", data={
        "csrf_token": auth.csrf("/staff/"), "adc_drug": "sacituzumab_govitecan",
        "infusion_date": infusion.isoformat(), "start_date": (infusion + timedelta(days=8)).isoformat()})
    course = session.exec(select(Course).where(Course.participant_id == pa.id, Course.cycle_number == 2)).one()
    assert course.start_date == infusion + timedelta(days=8)


def test_a_drug_outside_the_configured_list_is_refused(client, auth, world, clock, session):
    auth.staff("nurse_a")
    pa = world.participants["pa"]
    client.post(f"/staff/participants/{pa.id}/courses", data={
        "csrf_token": auth.csrf("/staff/"), "adc_drug": "aspirin", "infusion_date": "2027-01-05"})
    assert len(session.exec(select(Course).where(Course.participant_id == pa.id)).all()) == 1


def test_withdrawal_needs_a_reason_and_stops_reminders(client, auth, world, clock, session, app):
    from diary.messaging import outbox

    pa = world.participants["pa"]
    outbox.enqueue(session, app.extensions["diary.cipher"], dedupe_key="dose:x:4", kind="dose_reminder",
                   site_id=pa.site_id, participant_id=pa.id, to=world.phones["pa"], body="Take", not_before=clock.now)
    session.commit()
    auth.staff("nurse_a")
    client.post(f"/staff/participants/{pa.id}/end", data={"csrf_token": auth.csrf("/staff/"),
                                                          "status": "withdrawn", "reason": ""})
    session.expire_all()
    assert session.get(Participant, pa.id).status == "active"
    client.post(f"/staff/participants/{pa.id}/end", data={"csrf_token": auth.csrf("/staff/"),
                                                          "status": "withdrawn", "reason": "Consent withdrawn"})
    session.expire_all()
    p = session.get(Participant, pa.id)
    assert p.status == "withdrawn" and p.end_reason == "Consent withdrawn" and p.ended_at == clock.now
    assert session.exec(select(Message.status).where(Message.participant_id == pa.id)).all() == ["dropped"]
    event = session.exec(select(AuditEvent).where(AuditEvent.action == "participant_withdrawn")).one()
    assert event.reason == "Consent withdrawn" and event.before == {"status": "active"}


def test_a_withdrawn_participant_is_signed_out(client, auth, world, session, clock):
    from diary.services.enrolment import end_participation

    auth.participant("pa")
    assert client.get("/").status_code == 200
    end_participation(session, participant=session.get(Participant, world.participants["pa"].id),
                      status="withdrawn", reason="moved away", staff_id=world.staff["nurse_a"].id, now=clock.now)
    session.commit()
    assert client.get("/").status_code == 302


def test_enrolment_refuses_a_reminder_time_in_the_sites_own_quiet_hours(client, auth, world, clock, session):
    site = session.get(Site, world.sites["A"].id)
    site.quiet_start, site.quiet_end = time(6, 0), time(8, 30)
    session.add(site)
    session.commit()
    auth.staff("nurse_a")
    client.post("/staff/screenings/new", data=screening_form(auth, world, clock))
    sc = session.exec(select(Screening)).one()
    r = client.post(f"/staff/screenings/{sc.id}/enrol", data={
        "csrf_token": auth.csrf("/staff/"), "study_number": "A-009", "phone": "13800009999",
        "language": "zh", "reminder_time": "08:00", "timezone": ""})
    assert r.status_code == 400
    assert "No reminders are sent in quiet hours (06:00–08:30)" in r.get_data(as_text=True)
    assert session.exec(select(Participant).where(Participant.study_number == "A-009")).first() is None


def test_enrolment_refuses_a_reminder_time_in_quiet_hours(client, auth, world, clock, session):
    auth.staff("nurse_a")
    client.post("/staff/screenings/new", data=screening_form(auth, world, clock))
    sc = session.exec(select(Screening)).one()
    r = client.post(f"/staff/screenings/{sc.id}/enrol", data={
        "csrf_token": auth.csrf("/staff/"), "study_number": "A-009", "phone": "13800009999",
        "language": "zh", "reminder_time": "22:00", "timezone": ""})
    assert r.status_code == 400
    assert "No reminders are sent in quiet hours (21:30–07:00)" in r.get_data(as_text=True)
    assert session.exec(select(Participant).where(Participant.study_number == "A-009")).first() is None
