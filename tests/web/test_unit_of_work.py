"""One unit of work per request (issue 14, item 5): the request's writes are committed when the view
answers below 400, before the response leaves, and rolled back otherwise; a refusal that must be
remembered (a wrong PIN, password or code) is committed although the answer is a 401."""

import pytest
from flask import flash, redirect
from sqlalchemy import text
from sqlmodel import select

from diary import db
from diary.models import AccessCode, AuditEvent, Flag, Participant, Screening, Site, StaffUser
from diary.services.flags import raise_flag
from tests.conftest import PASSWORD, make_test_app
from tests.web.staff_helpers import english  # noqa: F401 - fixture
from tests.web.test_staff_enrolment import screening_form

pytestmark = pytest.mark.usefixtures("english")


@pytest.fixture
def uow_app(database_url, world, clock):
    """The app with one extra page that writes through a real service (a flag and its audit event),
    then answers as the test asks: the unit of work must treat it as it treats every view."""
    app = make_test_app(database_url, PROPAGATE_EXCEPTIONS=False)
    app.extensions["diary.clock"] = clock
    site_id = world.sites["A"].id

    @app.get("/uow/<outcome>")
    def answer(outcome: str):
        raise_flag(db.session(), key=f"uow:{outcome}", kind="missed_dose", site_id=site_id,
                   detail="written by the view", now=clock.now)
        if outcome == "raises":
            raise RuntimeError("a bug after the write")
        if outcome == "refuses":
            return "refused", 422
        if outcome == "redirects":
            return redirect("/login", 303)
        if outcome == "keeps":
            db.commit_now()
            return "refused, but remembered", 401
        if outcome == "conflicts":
            # A second site with an existing code: the database refuses it only at the commit.
            db.session().add(Site(code="A", name="Duplicate", phone="+86-591-0000-0009"))
            flash("Saved.", "success")
        if outcome == "breaks":
            # An edit of an append-only row, refused by the guard only when the commit flushes it.
            event = db.session().exec(select(AuditEvent).order_by(AuditEvent.id)).first()
            event.reason = "rewritten"
        return "saved"

    yield app
    app.extensions["diary.engine"].dispose()


def english_client(app):
    client = app.test_client()
    client.environ_base["HTTP_ACCEPT_LANGUAGE"] = "en"
    return client


def flags(session, key: str) -> int:
    session.expire_all()
    return len(session.exec(select(Flag).where(Flag.key == key)).all())


def audit_events(session, action: str) -> list[AuditEvent]:
    session.expire_all()
    return list(session.exec(select(AuditEvent).where(AuditEvent.action == action)).all())


@pytest.mark.parametrize("outcome, status", [("raises", 500), ("refuses", 422)])
def test_a_view_that_fails_or_refuses_after_writing_leaves_nothing(uow_app, session, outcome, status):
    r = english_client(uow_app).get(f"/uow/{outcome}")
    assert r.status_code == status
    assert flags(session, f"uow:{outcome}") == 0
    assert audit_events(session, "flag_raised") == []


@pytest.mark.parametrize("outcome, status", [("answers", 200), ("redirects", 303)])
def test_a_view_that_answers_2xx_or_3xx_commits_its_writes(uow_app, session, outcome, status):
    r = english_client(uow_app).get(f"/uow/{outcome}")
    assert r.status_code == status
    assert flags(session, f"uow:{outcome}") == 1
    assert len(audit_events(session, "flag_raised")) == 1


def test_what_a_refusal_must_remember_is_committed_though_the_answer_is_an_error(uow_app, session):
    r = english_client(uow_app).get("/uow/keeps")
    assert r.status_code == 401
    assert flags(session, "uow:keeps") == 1


def test_a_commit_the_database_refuses_is_a_translated_409_and_nothing_is_saved(uow_app, session):
    client = uow_app.test_client()
    r = client.get("/uow/conflicts", headers={"Accept-Language": "zh"})
    html = r.get_data(as_text=True)
    assert r.status_code == 409
    assert "同时有其他更改" in html and "没有保存任何内容" in html
    assert "同时有其他更改." not in html  # a Chinese title ends with 。, not a half-width stop
    assert flags(session, "uow:conflicts") == 0
    assert len(session.exec(select(Site).where(Site.code == "A")).all()) == 1
    with client.session_transaction() as cookie:
        assert "_flashes" not in cookie  # "Saved." must not show on the next page


def test_a_commit_that_fails_otherwise_is_the_translated_500_page_and_nothing_is_saved(uow_app, session):
    r = english_client(uow_app).get("/uow/breaks")
    assert r.status_code == 500 and "<h1>Something went wrong</h1>" in r.get_data(as_text=True)
    assert flags(session, "uow:breaks") == 0
    assert audit_events(session, "flag_raised") == []


def test_a_refused_commit_answers_htmx_with_a_fragment_and_json_with_json(uow_app, session):
    client = english_client(uow_app)
    r = client.get("/uow/conflicts", headers={"HX-Request": "true"})
    assert r.status_code == 409 and r.headers["HX-Retarget"] == "#request-error"
    assert "<html" not in r.get_data(as_text=True) and "Changed at the same moment" in r.get_data(as_text=True)
    r = client.get("/uow/conflicts", headers={"Accept": "application/json"})
    assert r.status_code == 409 and r.get_json() == {
        "ok": False, "error": "conflict", "message": "This was changed at the same moment from somewhere else,"
        " so nothing was saved. Please reload the page and try again."}


def _refuse_activation_links(session) -> None:
    """Make the database refuse every new activation link, as a failure of the second step would."""
    if session.get_bind().dialect.name == "sqlite":
        session.exec(text("CREATE TRIGGER no_links BEFORE INSERT ON accesscode "
                          "BEGIN SELECT RAISE(ABORT, 'no activation links'); END"))
    else:
        session.exec(text("CREATE FUNCTION no_links() RETURNS trigger LANGUAGE plpgsql AS "
                          "$$ BEGIN RAISE EXCEPTION 'no activation links'; END $$"))
        session.exec(text("CREATE TRIGGER no_links BEFORE INSERT ON accesscode "
                          "FOR EACH ROW EXECUTE FUNCTION no_links()"))
    session.commit()


def test_an_enrolment_whose_activation_link_fails_leaves_no_participant(app, client, auth, world, clock, session):
    app.config["PROPAGATE_EXCEPTIONS"] = False
    auth.staff("nurse_a")
    client.post("/staff/screenings/new", data=screening_form(auth, world, clock))
    sc = session.exec(select(Screening)).one()
    _refuse_activation_links(session)
    r = client.post(f"/staff/screenings/{sc.id}/enrol", data={
        "csrf_token": auth.csrf("/staff/"), "study_number": "A-007", "phone": "138 0000 7777",
        "language": "zh", "reminder_time": "07:30", "timezone": ""})
    assert r.status_code == 500
    session.expire_all()
    # Enrolment and its link are one transaction: no participant is left without a way to sign in.
    assert session.exec(select(Participant).where(Participant.study_number == "A-007")).first() is None
    assert len(audit_events(session, "participant_enrolled")) == 2  # the world's two, no third
    assert session.exec(select(AccessCode)).all() == []


def test_a_wrong_pin_is_counted_and_audited_though_the_answer_is_401(client, auth, world, session):
    r = auth.participant("pa", pin="0000")
    assert r.status_code == 401
    session.expire_all()
    assert session.get(Participant, world.participants["pa"].id).failed_pins == 1
    assert [e.after["what"] for e in audit_events(session, "sign_in_failed")] == ["pin"]


def test_a_wrong_authenticator_code_is_counted_though_the_answer_is_401(client, auth, world, clock, session):
    token = auth.csrf("/staff/login")
    r = client.post("/staff/login", data={"csrf_token": token, "email": "nurse_a@test.example",
                                          "password": PASSWORD})
    assert r.status_code == 302
    r = client.post("/staff/login/code", data={"csrf_token": auth.csrf("/staff/login/code"), "code": "000000"})
    assert r.status_code == 401
    session.expire_all()
    # The right password does not count; the wrong code does, and stays counted.
    assert session.get(StaffUser, world.staff["nurse_a"].id).failed_logins == 1
    assert [e.after["what"] for e in audit_events(session, "sign_in_failed")] == ["totp"]


def test_a_wrong_signature_is_counted_and_signs_nothing(client, auth, world, clock, session):
    auth.staff("nurse_a")
    r = client.post("/staff/screenings/new", data=screening_form(auth, world, clock, password="wrong"))
    assert r.status_code == 401
    session.expire_all()
    assert session.exec(select(Screening)).all() == []
    assert audit_events(session, "screening_signed") == []
    assert session.get(StaffUser, world.staff["nurse_a"].id).failed_logins == 1
    assert [e.after["what"] for e in audit_events(session, "sign_in_failed")] == ["signature"]


def test_the_failures_of_an_inactive_account_are_not_counted(client, auth, world, session):
    p = session.get(Participant, world.participants["pa"].id)
    p.status = "withdrawn"
    session.add(p)
    session.commit()
    r = auth.participant("pa")
    assert r.status_code == 401
    session.expire_all()
    assert session.get(Participant, world.participants["pa"].id).failed_pins == 0

