"""Every protected route refuses the wrong person: a redirect to sign-in or 403, never data."""

import pytest
from sqlmodel import select

from diary.models import AccessCode
from tests.conftest import mentions

# Who may open what is decided in Python, not by the database.
pytestmark = pytest.mark.any_db

PATIENT_PAGES = ["/"]
STAFF_PAGES = ["/staff/", "/staff/participants/{pa}"]
STAFF_POSTS = ["/staff/participants/{pa}/activation"]


def _url(template, world):
    return template.format(pa=world.participants["pa"].id)


@pytest.mark.parametrize("page", PATIENT_PAGES + STAFF_PAGES)
def test_anonymous_visitors_are_sent_to_sign_in(client, world, page):
    r = client.get(_url(page, world))
    assert r.status_code == 302
    assert "/login" in r.headers["Location"]


def test_anonymous_staff_pages_send_to_the_staff_sign_in(client, world):
    r = client.get("/staff/")
    assert r.headers["Location"].startswith("/staff/login")


def test_an_expired_session_in_an_htmx_request_redirects_the_whole_page(client, world):
    r = client.get("/staff/", headers={"HX-Request": "true"})
    assert r.headers["HX-Redirect"].startswith("/staff/login")


@pytest.mark.parametrize("page", STAFF_PAGES)
def test_a_participant_cannot_open_staff_pages(client, auth, world, page):
    auth.participant("pa")
    assert client.get(_url(page, world)).status_code == 403


@pytest.mark.parametrize("page", PATIENT_PAGES)
def test_staff_cannot_open_participant_pages(client, auth, world, page):
    auth.staff("nurse_a")
    assert client.get(_url(page, world)).status_code == 403


def test_a_nurse_of_another_site_cannot_see_the_participant(client, auth, world):
    auth.staff("nurse_b")
    r = client.get(_url("/staff/participants/{pa}", world))
    assert r.status_code == 404
    assert not mentions(r.data, "PA")


def test_the_participant_list_shows_only_the_nurses_own_sites(client, auth, world):
    auth.staff("nurse_b")
    html = client.get("/staff/").get_data(as_text=True)
    # Match whole cell text: the page's random CSRF token may contain the letters "PA".
    assert ">PB<" in html and ">PA<" not in html


def test_an_admin_sees_every_site(client, auth, world):
    auth.staff("admin")
    html = client.get("/staff/").get_data(as_text=True)
    assert ">PA<" in html and ">PB<" in html


def test_a_nurse_of_another_site_cannot_issue_an_activation_link(client, auth, world, session):
    auth.staff("nurse_b")
    token = auth.csrf("/staff/")
    r = client.post(_url(STAFF_POSTS[0], world), data={"csrf_token": token})
    assert r.status_code == 404
    assert session.exec(select(AccessCode)).all() == []


def test_a_participant_cannot_issue_activation_links(client, auth, world, session):
    auth.participant("pa")
    token = auth.csrf("/")
    r = client.post(_url(STAFF_POSTS[0], world), data={"csrf_token": token})
    assert r.status_code == 403
    assert session.exec(select(AccessCode)).all() == []


def test_a_nurse_sees_her_own_participant(client, auth, world):
    auth.staff("nurse_a")
    r = client.get(_url("/staff/participants/{pa}", world))
    assert r.status_code == 200
    assert b"PA" in r.data
    # The phone number is masked on staff screens.
    assert b"+8613800001111" not in r.data
