"""A state-changing request without a CSRF token is refused and changes nothing."""

from __future__ import annotations

import pytest
from sqlmodel import func, select

from diary.auth import services as auth_services
from diary.models import AccessCode, AuditEvent, Participant
from tests.conftest import PIN, csrf_from

# CSRF is checked before any use case touches the database.
pytestmark = pytest.mark.any_db


def _fresh(session, model, pk):
    session.rollback()
    session.expire_all()
    return session.get(model, pk)


def _count(session, model) -> int:
    session.rollback()
    return session.exec(select(func.count()).select_from(model)).one()


@pytest.fixture
def activation_link(app, session, world, clock):
    policy = auth_services.Policy(activation_hours=app.config["ACTIVATION_HOURS"])
    participant = _fresh(session, Participant, world.participants["pa"].id)
    token = auth_services.issue_activation(session, participant, world.staff["nurse_a"].id, clock.now, policy)
    session.commit()
    return "/activate/" + token


def test_participant_sign_in_without_a_token_is_refused_and_counts_nothing(client, world, session):
    events = _count(session, AuditEvent)
    r = client.post("/login", data={"phone": world.phones["pa"], "pin": "0000"})
    assert r.status_code == 400
    assert _count(session, AuditEvent) == events
    assert _fresh(session, Participant, world.participants["pa"].id).failed_pins == 0


def test_participant_sign_in_without_a_token_does_not_sign_in(client, world):
    r = client.post("/login", data={"phone": world.phones["pa"], "pin": PIN})
    assert r.status_code == 400
    assert client.get("/").status_code == 302


def test_activation_without_a_token_sets_no_pin_and_keeps_the_link(client, world, session, activation_link):
    before = _fresh(session, Participant, world.participants["pa"].id).pin_hash
    r = client.post(activation_link, data={"pin": "8642", "pin_confirm": "8642"})
    assert r.status_code == 400
    assert _fresh(session, Participant, world.participants["pa"].id).pin_hash == before
    assert session.exec(select(AccessCode.used_at)).all() == [None]
    assert client.get(activation_link).status_code == 200


def test_issuing_an_activation_link_without_a_token_creates_none(client, auth, world, session):
    auth.staff("nurse_a")
    r = client.post(f"/staff/participants/{world.participants['pa'].id}/activation")
    assert r.status_code == 400
    assert _count(session, AccessCode) == 0


def test_a_token_from_another_session_is_refused(app, client, auth, world, session):
    auth.staff("nurse_a")
    stranger_token = csrf_from(app.test_client(), "/login")
    r = client.post(f"/staff/participants/{world.participants['pa'].id}/activation",
                    data={"csrf_token": stranger_token})
    assert r.status_code == 400
    assert _count(session, AccessCode) == 0


def test_sign_out_without_a_token_keeps_the_participant_signed_in(client, auth):
    auth.participant("pa")
    assert client.post("/logout").status_code == 400
    assert client.get("/").status_code == 200


def test_staff_sign_out_without_a_token_keeps_the_session(client, auth):
    auth.staff("nurse_a")
    assert client.post("/staff/logout").status_code == 400
    assert client.get("/staff/").status_code == 200


def test_htmx_may_send_the_token_in_the_x_csrftoken_header(client, auth):
    auth.participant("pa")
    token = auth.csrf("/")
    r = client.post("/logout", headers={"X-CSRFToken": token, "HX-Request": "true"})
    assert r.status_code == 302
    assert client.get("/").status_code == 302


def test_the_header_token_works_for_a_form_post_too(client, auth, world, session):
    auth.staff("nurse_a")
    token = auth.csrf("/staff/")
    r = client.post(f"/staff/participants/{world.participants['pa'].id}/activation",
                    headers={"X-CSRFToken": token})
    assert r.status_code == 200
    assert _count(session, AccessCode) == 1


def test_every_page_hands_htmx_the_token_in_a_header(client, auth):
    auth.participant("pa")
    html = client.get("/").get_data(as_text=True)
    assert 'hx-headers=\'{"X-CSRFToken": "' in html
