"""Participant contact details for staff (issue 14, item 2): the full number behind an audited
"show" with tap-to-call, corrections with a reason, the number kept unique by the database, and
an emergency contact encrypted like the participant's number."""

from __future__ import annotations

import pyotp
import pytest
from sqlmodel import select

from diary.models import AuditEvent, Participant
from tests.conftest import PASSWORD, csrf_from
from tests.web.race_helpers import at_once
from tests.web.staff_helpers import english  # noqa: F401 - fixture

pytestmark = pytest.mark.usefixtures("english")
HTMX = {"HX-Request": "true"}
NEW_PHONE = "+8613912345678"


def _events(session, action):
    session.expire_all()
    return session.exec(select(AuditEvent).where(AuditEvent.action == action)).all()


def _participant(session, world, key="pa") -> Participant:
    session.rollback()
    session.expire_all()
    return session.get(Participant, world.participants[key].id)


@pytest.mark.any_db
def test_the_participant_page_shows_the_number_masked(client, auth, world):
    auth.staff("nurse_a")
    html = client.get(f"/staff/participants/{world.participants['pa'].id}").get_data(as_text=True)
    assert world.phones["pa"] not in html
    assert "+86•••••••1111" in html and "Show number" in html


def test_showing_the_number_gives_a_tap_to_call_link_and_is_audited(client, auth, world, session):
    auth.staff("nurse_a")
    pid = world.participants["pa"].id
    token = csrf_from(client, f"/staff/participants/{pid}/contact")
    r = client.post(f"/staff/participants/{pid}/phone/participant", data={"csrf_token": token}, headers=HTMX)
    assert r.status_code == 200
    assert f'href="tel:{world.phones["pa"]}"' in r.get_data(as_text=True)
    [event] = _events(session, "phone_shown")
    assert (event.actor, event.participant_id) == (f"staff:{world.staff['nurse_a'].id}", pid)
    assert world.phones["pa"] not in str(event.after)  # the trail says it was shown, not what it is


@pytest.mark.any_db
def test_staff_of_another_site_cannot_see_the_number(client, auth, world, session):
    auth.staff("nurse_b")
    pid = world.participants["pa"].id
    token = csrf_from(client, "/staff/")
    assert client.get(f"/staff/participants/{pid}/contact").status_code == 404
    r = client.post(f"/staff/participants/{pid}/phone/participant", data={"csrf_token": token}, headers=HTMX)
    assert r.status_code == 404
    assert world.phones["pa"] not in r.get_data(as_text=True)
    assert _events(session, "phone_shown") == []


@pytest.mark.any_db
def test_showing_the_number_without_a_csrf_token_shows_nothing(client, auth, world, session):
    auth.staff("nurse_a")
    r = client.post(f"/staff/participants/{world.participants['pa'].id}/phone/participant", headers=HTMX)
    assert r.status_code == 400
    assert world.phones["pa"] not in r.get_data(as_text=True)
    assert _events(session, "phone_shown") == []


def test_a_corrected_number_is_the_one_the_participant_signs_in_with(client, auth, world, session, app):
    auth.staff("nurse_a")
    pid = world.participants["pa"].id
    token = csrf_from(client, f"/staff/participants/{pid}/contact")
    r = client.post(f"/staff/participants/{pid}/contact", data={
        "csrf_token": token, "phone": "139 1234 5678", "language": "zh", "reason": "New SIM card"})
    assert r.status_code == 302
    p = _participant(session, world)
    assert app.extensions["diary.cipher"].decrypt(p.phone_enc) == NEW_PHONE
    assert p.language == "zh"
    [event] = _events(session, "contact_corrected")
    assert event.reason == "New SIM card" and event.after == {"phone": "+86•••••••5678", "language": "zh"}
    other = app.test_client()
    login = csrf_from(other, "/login")
    assert other.post("/login", data={"csrf_token": login, "phone": NEW_PHONE, "pin": "4826"}).status_code == 302


@pytest.mark.any_db
def test_a_correction_without_a_reason_changes_nothing(client, auth, world, session):
    auth.staff("nurse_a")
    pid = world.participants["pa"].id
    token = csrf_from(client, f"/staff/participants/{pid}/contact")
    r = client.post(f"/staff/participants/{pid}/contact", data={
        "csrf_token": token, "phone": NEW_PHONE, "language": "zh", "reason": ""})
    assert r.status_code == 400 and "Give a reason." in r.get_data(as_text=True)
    assert _participant(session, world).language == "en"
    assert _events(session, "contact_corrected") == []


def test_another_participants_number_is_refused(client, auth, world, session):
    auth.staff("admin")
    pid = world.participants["pa"].id
    token = csrf_from(client, f"/staff/participants/{pid}/contact")
    r = client.post(f"/staff/participants/{pid}/contact", data={
        "csrf_token": token, "phone": world.phones["pb"], "language": "en", "reason": "typo"})
    assert r.status_code == 400 and "already enrolled" in r.get_data(as_text=True)
    assert _events(session, "contact_corrected") == []


def test_two_participants_corrected_to_one_number_at_once_keep_it_unique(app, world, session, clock):
    # Each admin browser signs in (one TOTP code each: steps are single use, so use two steps).
    from tests.web.race_helpers import new_client

    clients = []
    for offset in (0, 30):
        c = new_client(app)
        token = csrf_from(c, "/staff/login")
        c.post("/staff/login", data={"csrf_token": token, "email": "admin@test.example", "password": PASSWORD})
        token = csrf_from(c, "/staff/login/code")
        code = pyotp.TOTP(world.totp["admin"]).at(clock.now.timestamp() + offset)
        assert c.post("/staff/login/code", data={"csrf_token": token, "code": code}).status_code == 302
        clients.append(c)
    pids = [world.participants["pa"].id, world.participants["pb"].id]
    tokens = [csrf_from(c, f"/staff/participants/{pid}/contact") for c, pid in zip(clients, pids, strict=True)]

    def correct(i):
        def request(_fresh_client):
            return clients[i].post(f"/staff/participants/{pids[i]}/contact", data={
                "csrf_token": tokens[i], "phone": NEW_PHONE, "language": "en", "reason": "same number"}).status_code
        return request

    statuses = at_once(app, [correct(0), correct(1)])
    assert sorted(statuses) == [302, 400]
    session.expire_all()
    cipher = app.extensions["diary.cipher"]
    numbers = [cipher.decrypt(session.get(Participant, pid).phone_enc) for pid in pids]
    assert numbers.count(NEW_PHONE) == 1
    assert len(_events(session, "contact_corrected")) == 1


def test_an_emergency_contact_is_kept_encrypted_and_shown_on_request(client, auth, world, session, app):
    auth.staff("nurse_a")
    pid = world.participants["pa"].id
    token = csrf_from(client, f"/staff/participants/{pid}/contact")
    r = client.post(f"/staff/participants/{pid}/emergency-contact", data={
        "csrf_token": token, "name": "Li Hua", "relation": "daughter", "phone": "13700001234",
        "reason": "Given at the visit"})
    assert r.status_code == 302
    p = _participant(session, world)
    assert b"13700001234" not in p.emergency_phone_enc
    page = client.get(f"/staff/participants/{pid}").get_data(as_text=True)
    assert "Li Hua (daughter)" in page and "+86•••••••1234" in page and "+8613700001234" not in page
    r = client.post(f"/staff/participants/{pid}/phone/emergency", data={"csrf_token": token}, headers=HTMX)
    assert 'href="tel:+8613700001234"' in r.get_data(as_text=True)
    [shown] = _events(session, "phone_shown")
    assert shown.after["which"] == "emergency"
    [saved] = _events(session, "emergency_contact_set")
    assert saved.reason == "Given at the visit" and "Li Hua" not in str(saved.after)


@pytest.mark.any_db
def test_an_emergency_contact_needs_a_valid_number(client, auth, world, session):
    auth.staff("nurse_a")
    pid = world.participants["pa"].id
    token = csrf_from(client, f"/staff/participants/{pid}/contact")
    r = client.post(f"/staff/participants/{pid}/emergency-contact", data={
        "csrf_token": token, "name": "Li Hua", "relation": "daughter", "phone": "12", "reason": "visit"})
    assert r.status_code == 400 and "not a valid mobile number" in r.get_data(as_text=True)
    assert _participant(session, world).emergency_name is None


@pytest.mark.any_db
def test_a_danger_flag_in_the_queue_offers_the_number_to_call_back(client, auth, world, session, clock):
    from diary.services.flags import raise_flag

    pa = world.participants["pa"]
    raise_flag(session, key="danger:test", kind="danger_symptom", site_id=pa.site_id, participant_id=pa.id,
               detail="Black stools", now=clock.now)
    session.commit()
    auth.staff("nurse_a")
    html = client.get("/staff/flags").get_data(as_text=True)
    assert f"/staff/participants/{pa.id}/phone/participant" in html and "Show number" in html
    assert world.phones["pa"] not in html
