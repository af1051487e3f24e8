"""Participant A can never read or write participant B's days, symptoms, settings or sync records."""

import uuid

import pytest
from sqlmodel import select

from diary.models import AuditEvent, DoseLog, Participant, SymptomReport
from diary.services import symptoms as symptom_service
from tests.conftest import mentions
from tests.web.patient_helpers import csrf

# Who may open what is decided in Python, not by the database.
pytestmark = pytest.mark.any_db

B_PAGES = [
    "/courses/{b}/days/3",
    "/courses/{b}/days/3/not-taken",
    "/calendar?course={b}",
]
B_POSTS = [
    "/courses/{b}/days/3/taken",
    "/courses/{b}/days/3/not-taken",
    "/courses/{b}/days/3/undo",
]
PARTICIPANT_PAGES = ["/", "/calendar", "/symptoms", "/settings", "/courses/{a}/days/3", "/sync/csrf"]
PARTICIPANT_POSTS = ["/courses/{a}/days/3/taken", "/courses/{a}/days/3/not-taken", "/courses/{a}/days/3/undo",
                     "/symptoms", "/settings"]
JSON_POSTS = ["/sync/dose", "/sync/symptoms"]


def _url(template, world):
    return template.format(a=world.courses["pa"].id, b=world.courses["pb"].id)


@pytest.fixture
def pa(auth, client, world):
    auth.participant("pa")
    return world.participants["pa"]


@pytest.mark.parametrize("page", B_PAGES)
def test_a_participant_cannot_read_another_participants_days(client, pa, world, page):
    r = client.get(_url(page, world))
    assert r.status_code == 404
    assert not mentions(r.data, "PB")


@pytest.mark.parametrize("url", B_POSTS)
def test_a_participant_cannot_write_another_participants_days(client, pa, world, session, url):
    r = client.post(_url(url, world), data={"csrf_token": csrf(client), "client_key": uuid.uuid4().hex,
                                            "reason": "forgot"})
    assert r.status_code == 404
    assert session.exec(select(DoseLog)).all() == []


def test_the_sync_endpoint_refuses_another_participants_course(client, pa, world, session):
    token = client.get("/sync/csrf").get_json()["csrf_token"]
    r = client.post("/sync/dose", headers={"X-CSRFToken": token}, json={
        "client_key": str(uuid.uuid4()), "course_id": world.courses["pb"].id, "day": 3, "outcome": "taken"})
    assert r.status_code == 404
    assert session.exec(select(DoseLog)).all() == []


def test_another_participants_client_key_reveals_nothing(client, pa, world, session, clock, app):
    cfg = app.extensions["diary.study"]
    theirs = symptom_service.report_symptoms(
        session, cfg, participant=world.participants["pb"], symptoms=[{"key": "bruising", "severity": "mild"}],
        noticed_at=clock.now, client_key="pb-secret-key-1", source="participant", now=clock.now, note="private")
    session.commit()
    token = client.get("/sync/csrf").get_json()["csrf_token"]
    r = client.post("/sync/symptoms", headers={"X-CSRFToken": token}, json={
        "client_key": "pb-secret-key-1", "symptoms": [{"key": "bruising", "severity": "mild"}]})
    assert r.status_code == 422 and str(theirs.id) not in r.get_data(as_text=True)
    r = client.post("/symptoms", data={"csrf_token": csrf(client, "/symptoms"), "client_key": "pb-secret-key-1",
                                       "symptom": "bruising", "severity-bruising": "mild"})
    assert r.status_code == 422 and "private" not in r.get_data(as_text=True)
    assert len(session.exec(select(SymptomReport)).all()) == 1


def test_settings_change_only_the_signed_in_participant(client, pa, world, session):
    before = session.get(Participant, world.participants["pb"].id).model_dump()
    client.post("/settings", data={"csrf_token": csrf(client, "/settings"), "reminder_time": "07:15",
                                   "language": "zh", "sms": "off", "participant_id": world.participants["pb"].id})
    session.expire_all()
    assert session.get(Participant, world.participants["pb"].id).model_dump() == before
    # 07:15, not 06:00: a time inside quiet hours (21:30–07:00) is refused now (issue 11).
    assert session.get(Participant, pa.id).reminder_time == "07:15"


def test_another_participants_pages_show_none_of_their_data(client, pa, world):
    for url in ("/", "/calendar", "/symptoms", "/settings"):
        html = client.get(url).get_data(as_text=True)
        assert "Site B" not in html and "+86-591-0000-0001" not in html


@pytest.mark.parametrize("page", PARTICIPANT_PAGES)
def test_anonymous_visitors_are_sent_to_sign_in(client, world, page):
    r = client.get(_url(page, world))
    assert r.status_code == 302 and "/login" in r.headers["Location"]


@pytest.mark.parametrize("page", PARTICIPANT_PAGES)
def test_staff_cannot_open_participant_pages(client, auth, world, page):
    auth.staff("nurse_a")
    assert client.get(_url(page, world)).status_code == 403


@pytest.mark.parametrize("url", PARTICIPANT_POSTS)
def test_every_form_post_needs_the_csrf_token(client, pa, world, session, url):
    audit_before = len(session.exec(select(AuditEvent)).all())
    r = client.post(_url(url, world), data={"client_key": uuid.uuid4().hex, "reason": "forgot",
                                            "symptom": "bruising", "severity-bruising": "mild",
                                            "reminder_time": "07:30", "language": "zh", "sms": "off"})
    assert r.status_code == 400
    session.expire_all()
    assert session.exec(select(DoseLog)).all() == [] and session.exec(select(SymptomReport)).all() == []
    assert len(session.exec(select(AuditEvent)).all()) == audit_before


@pytest.mark.parametrize("url", JSON_POSTS)
def test_every_sync_post_needs_the_csrf_header(client, pa, world, session, url):
    r = client.post(url, json={"client_key": str(uuid.uuid4()), "course_id": world.courses["pa"].id, "day": 3,
                               "outcome": "taken", "symptoms": [{"key": "bruising", "severity": "mild"}]})
    assert r.status_code == 400
    assert session.exec(select(DoseLog)).all() == [] and session.exec(select(SymptomReport)).all() == []
