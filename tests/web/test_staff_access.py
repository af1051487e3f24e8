"""The staff workspace's access rules, parametrised over every staff URL (STYLE rule 9).

Anonymous visitors go to the staff sign-in, participants get 403, a nurse of site B sees nothing
of site A (another site's object answers exactly as a missing one: 404), nurses cannot sign dose
decisions or export, and nothing is written when refused.
"""

import re

import pytest
from sqlmodel import func, select

from diary.models import AuditEvent, DoseDecision
from tests.conftest import PASSWORD, mentions
from tests.web.staff_helpers import (
    english,  # noqa: F401 - fixture
    site_a_rows,
)

# Message texts come from catalogues, whatever the database.
pytestmark = [pytest.mark.usefixtures("english"), pytest.mark.any_db]

# Pages about one site-A object: {pa} participant, {course}, {lab}, {screening}, {report}.
SCOPED_GETS = [
    "/staff/participants/{pa}", "/staff/participants/{pa}/audit", "/staff/courses/{course}/decision",
    "/staff/courses/{course}/decision?lab={lab}", "/staff/labs/{lab}/correct", "/staff/screenings/{screening}",
    "/staff/symptoms/{report}/correct", "/staff/participants/{pa}/contact",
]
LIST_GETS = ["/staff/", "/staff/adherence", "/staff/adherence/summary", "/staff/flags", "/staff/screenings",
             "/staff/screenings/new"]
EXPORT = ["/staff/export"]
INVESTIGATOR_GETS = ["/staff/courses/{course}/fix"]
INVESTIGATOR_POSTS = ["/staff/courses/{course}/decision", "/staff/courses/{course}/void",
                      "/staff/courses/{course}/end-early"]
SCOPED_POSTS = [
    "/staff/participants/{pa}/activation", "/staff/participants/{pa}/courses", "/staff/participants/{pa}/end",
    "/staff/courses/{course}/labs", "/staff/courses/{course}/doses", "/staff/courses/{course}/decision",
    "/staff/labs/{lab}/correct", "/staff/flags/{flag}/acknowledge", "/staff/screenings/{screening}/enrol",
    "/staff/symptoms/{report}/correct", "/staff/courses/{course}/void", "/staff/courses/{course}/end-early",
    "/staff/participants/{pa}/phone/participant", "/staff/participants/{pa}/contact",
    "/staff/participants/{pa}/emergency-contact",
]
ALL_GETS = SCOPED_GETS + LIST_GETS + EXPORT + INVESTIGATOR_GETS
ALL_POSTS = SCOPED_POSTS + ["/staff/export", "/staff/screenings/new"]


@pytest.fixture
def rows(app, session, world, clock):
    return site_a_rows(app, session, world, clock)


def url(template: str, world, rows) -> str:
    return template.format(pa=world.participants["pa"].id, course=rows.course_id, lab=rows.lab_id,
                           flag=rows.flag_id, screening=rows.screening_id, report=rows.report_id)


def audit_count(session) -> int:
    session.expire_all()
    return session.exec(select(func.count()).select_from(AuditEvent)).one()


@pytest.mark.parametrize("page", ALL_GETS)
def test_anonymous_visitors_are_sent_to_the_staff_sign_in(client, world, rows, page):
    r = client.get(url(page, world, rows))
    assert r.status_code == 302 and r.headers["Location"].startswith("/staff/login")


@pytest.mark.parametrize("page", ALL_POSTS)
def test_anonymous_posts_change_nothing(client, auth, world, rows, session, page):
    before = audit_count(session)
    r = client.post(url(page, world, rows), data={"csrf_token": auth.csrf("/login")})
    assert r.status_code == 302 and "/login" in r.headers["Location"]
    assert audit_count(session) == before


@pytest.mark.parametrize("page", ALL_GETS)
def test_a_participant_cannot_open_staff_pages(client, auth, world, rows, page):
    auth.participant("pa")
    assert client.get(url(page, world, rows)).status_code == 403


@pytest.mark.parametrize("page", SCOPED_GETS)
def test_a_nurse_of_site_b_sees_nothing_of_site_a(client, auth, world, rows, page):
    auth.staff("nurse_b")
    r = client.get(url(page, world, rows))
    assert r.status_code == 404
    assert not mentions(r.data, "PA")


@pytest.mark.parametrize(("method", "page"), [("get", p) for p in SCOPED_GETS] + [("post", p) for p in SCOPED_POSTS])
def test_another_sites_object_answers_exactly_as_a_missing_one(client, auth, world, rows, method, page):
    auth.staff("nurse_b")
    data = {"csrf_token": auth.csrf("/staff/")} if method == "post" else None
    theirs = getattr(client, method)(url(page, world, rows), data=data)
    missing = getattr(client, method)(page.format(pa=10**9, course=10**9, lab=10**9, flag=10**9,
                                                  screening=10**9, report=10**9), data=data)
    # Investigator-only actions are refused to every nurse by role, before any look-up: 403 for both alike.
    expected = 403 if method == "post" and page in INVESTIGATOR_POSTS else 404
    assert theirs.status_code == missing.status_code == expected
    assert _same_page(theirs) == _same_page(missing)


def _same_page(response) -> str:
    """The page without what differs on every request whatever is asked: its request id (the
    reference an error page shows) and the CSRF token's timestamp."""
    text = response.get_data(as_text=True).replace(response.headers["X-Request-ID"], "<request id>")
    return re.sub(r'(csrf_token" value="|"X-CSRFToken": ")[^"]+', r"\1<token>", text)


@pytest.mark.parametrize("page", SCOPED_POSTS)
def test_a_nurse_of_site_b_cannot_change_anything_at_site_a(client, auth, world, rows, session, page):
    auth.staff("nurse_b")
    token = auth.csrf("/staff/")
    before = audit_count(session)
    r = client.post(url(page, world, rows), data={
        "csrf_token": token, "note": "x", "reason": "x", "status": "withdrawn", "password": PASSWORD})
    # Investigator-only actions are refused to every nurse by role (403); everything else is
    # "no such object" (404).
    assert r.status_code == (403 if page in INVESTIGATOR_POSTS else 404)
    assert audit_count(session) == before


@pytest.mark.parametrize("page", LIST_GETS)
def test_lists_show_a_nurse_of_site_b_only_her_own_site(client, auth, world, rows, page):
    auth.staff("nurse_b")
    r = client.get(url(page, world, rows))
    assert r.status_code == 200
    html = r.get_data(as_text=True)
    assert ">PA<" not in html and "S-A-1" not in html and "Day 2 not logged" not in html


@pytest.mark.parametrize("page", SCOPED_GETS + LIST_GETS)
def test_a_nurse_of_site_a_opens_every_page_of_her_site(client, auth, world, rows, page):
    auth.staff("nurse_a")
    assert client.get(url(page, world, rows)).status_code == 200


def test_a_nurse_cannot_sign_a_dose_decision_even_with_her_password(client, auth, world, rows, session):
    auth.staff("nurse_a")
    r = client.post(url("/staff/courses/{course}/decision", world, rows), data={
        "csrf_token": auth.csrf("/staff/"), "lab_id": rows.lab_id, "dose_mg": "0", "effective_day": "3",
        "override_reason": "x", "password": PASSWORD})
    assert r.status_code == 403
    assert session.exec(select(DoseDecision)).all() == []


def test_a_nurse_sees_the_proposal_but_no_signing_form(client, auth, world, rows):
    auth.staff("nurse_a")
    html = client.get(url("/staff/courses/{course}/decision", world, rows)).get_data(as_text=True)
    assert "Only an investigator can sign" in html
    assert 'name="password"' not in html


@pytest.mark.parametrize("who", ["nurse_a", "nurse_b"])
@pytest.mark.parametrize("method", ["get", "post"])
def test_nurses_cannot_export(client, auth, world, rows, session, who, method):
    auth.staff(who)
    before = audit_count(session)
    data = {"csrf_token": auth.csrf("/staff/")} if method == "post" else None
    r = getattr(client, method)("/staff/export", data=data)
    assert r.status_code == 403
    assert audit_count(session) == before


@pytest.mark.parametrize("page", [*INVESTIGATOR_GETS, "/staff/courses/{course}/void",
                                  "/staff/courses/{course}/end-early"])
def test_a_nurse_cannot_void_or_end_a_course_early(client, auth, world, rows, session, page):
    auth.staff("nurse_a")
    before = audit_count(session)
    if page.endswith("/fix"):
        r = client.get(url(page, world, rows))
    else:
        r = client.post(url(page, world, rows), data={"csrf_token": auth.csrf("/staff/"), "reason": "x",
                                                      "last_day": "2", "password": PASSWORD})
    assert r.status_code == 403
    assert audit_count(session) == before
