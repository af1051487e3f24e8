"""Access rules of the audited-records pages (accountability, adverse events), as in test_staff_access.py."""

import pytest
from sqlmodel import func, select

from diary.models import AdverseEvent, AuditEvent, ConcomitantMedication, DrugAccountability, ProtocolDeviation
from diary.services import accountability, adverse_events, conmeds
from tests.conftest import mentions
from tests.web.staff_helpers import english, site_a_rows  # noqa: F401 - fixture

# Who may open what is decided in Python, not by the database.
pytestmark = [pytest.mark.usefixtures("english"), pytest.mark.any_db]


@pytest.fixture
def rows(app, session, world, clock):
    base = site_a_rows(app, session, world, clock)
    cfg, rcfg = app.extensions["diary.study"], app.extensions["diary.records"]
    nurse = world.staff["nurse_a"].id
    entry, _w = accountability.record(
        session, cfg, rcfg, course=world.courses["pa"], participant=world.participants["pa"], kind="returned",
        on_date=clock.now.date(), tablets=4, staff_id=nurse, now=clock.now)
    ae = adverse_events.record(session, rcfg, participant=world.participants["pa"], staff_id=nurse, now=clock.now,
                               values=adverse_events.AeValues(
                                   term="epistaxis", term_text=None, grade=3, onset_date=clock.now.date(),
                                   end_date=None, serious=True, sae_criteria=("hospitalisation",),
                                   relatedness="possible", action="drug_interrupted", outcome="recovering"))
    saved = conmeds.record(session, cfg, rcfg, participant=world.participants["pa"], drug="rhTPO",
                           start_date=clock.now.date(), staff_id=nurse, now=clock.now)
    session.commit()
    return {"pa": world.participants["pa"].id, "course": base.course_id, "lab": base.lab_id,
            "report": base.report_id, "entry": entry.id, "ae": ae.id, "conmed": saved.conmed.id,
            "deviation": saved.proposed[0].id}


SCOPED_GETS = [
    "/staff/participants/{pa}/accountability", "/staff/courses/{course}/dispensing", "/staff/courses/{course}/returns",
    "/staff/accountability/{entry}/correct", "/staff/participants/{pa}/adverse-events",
    "/staff/participants/{pa}/adverse-events/new", "/staff/adverse-events/{ae}/edit",
    "/staff/participants/{pa}/conmeds", "/staff/conmeds/{conmed}/correct", "/staff/participants/{pa}/deviations",
]
LIST_GETS = ["/staff/accountability", "/staff/accountability?format=csv", "/staff/deviations", "/staff/reports",
             "/staff/reports?format=csv"]
SCOPED_POSTS = [
    "/staff/courses/{course}/dispensing", "/staff/courses/{course}/returns", "/staff/accountability/{entry}/correct",
    "/staff/participants/{pa}/adverse-events/new", "/staff/adverse-events/{ae}/edit",
    "/staff/symptoms/{report}/adverse-event", "/staff/labs/{lab}/adverse-event", "/staff/adverse-events/{ae}/reported",
    "/staff/participants/{pa}/conmeds", "/staff/conmeds/{conmed}/correct", "/staff/participants/{pa}/deviations",
    "/staff/deviations/{deviation}/decision",
]
INVESTIGATOR_POSTS = ["/staff/adverse-events/{ae}/reported"]
# Pages that write only for a nurse or an investigator (an admin reads, a monitor's view).
WRITE_GETS = [p for p in SCOPED_GETS if p.endswith(("/dispensing", "/returns", "/correct", "/new", "/edit"))]


@pytest.mark.parametrize("page", ["/staff/participants/{pa}/conmeds", "/staff/participants/{pa}/deviations"])
def test_an_admin_reads_medications_and_deviations_but_records_none(client, auth, rows, session, page):
    auth.staff("admin")
    assert client.get(url(page, rows)).status_code == 200
    before = counts(session)
    r = client.post(url(page, rows), data={"csrf_token": auth.csrf("/staff/"), "drug": "x",
                                           "start_date": "2026-12-01", "category": "other", "description": "x",
                                           "occurred_on": "2026-12-01", "classification": "minor"})
    assert r.status_code == 403 and counts(session) == before


def url(template, rows):
    return template.format(**rows)


def counts(session):
    session.expire_all()
    return tuple(session.exec(select(func.count()).select_from(m)).one()
                 for m in (AuditEvent, DrugAccountability, AdverseEvent, ConcomitantMedication, ProtocolDeviation))


@pytest.mark.parametrize("page", SCOPED_GETS + LIST_GETS)
def test_anonymous_visitors_are_sent_to_the_staff_sign_in(client, rows, page):
    r = client.get(url(page, rows))
    assert r.status_code == 302 and r.headers["Location"].startswith("/staff/login")


@pytest.mark.parametrize("page", SCOPED_POSTS)
def test_anonymous_posts_change_nothing(client, auth, rows, session, page):
    before = counts(session)
    r = client.post(url(page, rows), data={"csrf_token": auth.csrf("/login")})
    assert r.status_code == 302 and "/login" in r.headers["Location"]
    assert counts(session) == before


@pytest.mark.parametrize("page", SCOPED_GETS + LIST_GETS)
def test_a_participant_cannot_open_them(client, auth, rows, page):
    auth.participant("pa")
    assert client.get(url(page, rows)).status_code == 403


@pytest.mark.parametrize("page", SCOPED_GETS)
def test_a_nurse_of_site_b_sees_nothing_of_site_a(client, auth, rows, page):
    auth.staff("nurse_b")
    r = client.get(url(page, rows))
    assert r.status_code == 404 and not mentions(r.data, "PA")  # as if it did not exist


@pytest.mark.parametrize("page", SCOPED_POSTS)
def test_a_nurse_of_site_b_cannot_change_anything_at_site_a(client, auth, rows, session, page):
    auth.staff("nurse_b")
    token = auth.csrf("/staff/")
    before = counts(session)
    r = client.post(url(page, rows), data={"csrf_token": token, "reason": "x", "tablets": "1", "term": "epistaxis"})
    # Another site's row answers as a missing one (404); an investigator-only action refuses a
    # nurse's role first (403), whatever the row.
    assert r.status_code == (403 if page in INVESTIGATOR_POSTS else 404)
    assert counts(session) == before


@pytest.mark.parametrize("page", LIST_GETS)
def test_the_site_log_shows_a_nurse_of_site_b_only_her_site(client, auth, rows, page):
    auth.staff("nurse_b")
    r = client.get(url(page, rows))
    assert r.status_code == 200 and not mentions(r.get_data(as_text=True), "PA")


@pytest.mark.parametrize("page", SCOPED_GETS + LIST_GETS)
def test_a_nurse_of_site_a_opens_every_page_of_her_site(client, auth, rows, page):
    auth.staff("nurse_a")
    assert client.get(url(page, rows)).status_code == 200


@pytest.mark.parametrize("page", WRITE_GETS)
def test_an_admin_reads_the_logs_but_does_not_record_clinical_entries(client, auth, rows, page):
    auth.staff("admin")
    assert client.get(url(page, rows)).status_code == 403
    assert client.get(url("/staff/participants/{pa}/adverse-events", rows)).status_code == 200


def test_only_an_investigator_marks_an_sae_reported(client, auth, rows, session):
    for who in ("nurse_a", "admin"):
        auth.staff(who)
        before = counts(session)
        r = client.post(url("/staff/adverse-events/{ae}/reported", rows), data={
            "csrf_token": auth.csrf("/staff/"), "reported_date": "2026-12-01", "reported_time": "09:00"})
        assert r.status_code == 403 and counts(session) == before
        client.post("/staff/logout", data={"csrf_token": auth.csrf("/staff/")})
