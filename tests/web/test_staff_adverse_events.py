"""Adverse events: entry, drafts from a danger report or critical PLT, SAE flag, alert and reporting clock."""

import threading
from datetime import timedelta

import pytest
from sqlmodel import Session, select

from diary.models import AdverseEvent, AuditEvent, Flag, Message, SaeReport
from diary.scheduling import run_jobs
from diary.scheduling.context import Jobs
from diary.services import adverse_events, labs, symptoms
from tests.web.staff_helpers import english  # noqa: F401 - fixture

pytestmark = pytest.mark.usefixtures("english")


def today(clock):
    return (clock.now + timedelta(hours=8)).date()


def ae_data(auth, clock, **overrides):
    data = {"csrf_token": auth.csrf("/staff/"), "term": "epistaxis", "grade": "2",
            "onset_date": today(clock).isoformat(), "relatedness": "possible", "action": "dose_not_changed",
            "outcome": "recovering"}
    return data | overrides


def events(session):
    session.expire_all()
    return session.exec(select(AdverseEvent).order_by(AdverseEvent.id)).all()


@pytest.fixture
def danger_report(app, session, world, clock):
    report = symptoms.report_symptoms(
        session, app.extensions["diary.study"], participant=world.participants["pa"],
        symptoms=[{"key": "blood_in_urine", "severity": "severe"}], noticed_at=clock.now, client_key="d-1",
        source="participant", now=clock.now, course_id=world.courses["pa"].id)
    session.commit()
    return report


def test_a_nurse_records_an_adverse_event_with_every_field(client, auth, world, clock, session):
    auth.staff("nurse_a")
    pa = world.participants["pa"]
    r = client.post(f"/staff/participants/{pa.id}/adverse-events/new", data=ae_data(auth, clock))
    assert r.status_code == 302
    [ae] = events(session)
    assert (ae.term, ae.grade, ae.serious, ae.relatedness, ae.action, ae.outcome, ae.status) == (
        "epistaxis", 2, False, "possible", "dose_not_changed", "recovering", "recorded")
    page = client.get(f"/staff/participants/{pa.id}").get_data(as_text=True)
    assert "Epistaxis" in page and "grade 2" in page  # participant page and timeline
    assert session.exec(select(AuditEvent).where(AuditEvent.action == "ae_recorded")).first() is not None


@pytest.mark.parametrize(("overrides", "message"), [
    ({"term": "other"}, "Describe the event"),
    ({"term": "made_up"}, "Not saved"),
    ({"grade": "0"}, "Choose the CTCAE grade."),
    ({"grade": "9"}, "Choose the CTCAE grade."),
    ({"onset_date": "2027-03-01"}, "The date cannot be in the future."),
    ({"end_date": "2026-01-01"}, "The end date must be between"),
    ({"serious": "y"}, "at least one seriousness criterion"),
    ({"sae_criteria": "death"}, "only to a serious event"),
    ({"relatedness": ""}, "relatedness"),
])
def test_incomplete_or_inconsistent_events_are_refused_and_change_nothing(
        client, auth, world, clock, session, overrides, message):
    auth.staff("nurse_a")
    r = client.post(f"/staff/participants/{world.participants['pa'].id}/adverse-events/new",
                    data=ae_data(auth, clock, **overrides))
    assert r.status_code == 400 and message in r.get_data(as_text=True)
    assert events(session) == []


def test_a_danger_report_becomes_an_ae_draft_in_one_step_linked_to_it(client, auth, world, session, danger_report):
    auth.staff("nurse_a")
    flags = client.get("/staff/flags").get_data(as_text=True)
    assert f"/staff/symptoms/{danger_report.id}/adverse-event" in flags
    r = client.post(f"/staff/symptoms/{danger_report.id}/adverse-event", data={"csrf_token": auth.csrf("/staff/")})
    assert r.status_code == 302 and "/edit" in r.headers["Location"]
    [ae] = events(session)
    assert (ae.status, ae.term, ae.source_kind, ae.source_id) == ("draft", "hematuria", "symptom_report",
                                                                  danger_report.id)
    client.post(f"/staff/symptoms/{danger_report.id}/adverse-event", data={"csrf_token": auth.csrf("/staff/")})
    assert len(events(session)) == 1  # pressing again opens the same draft
    assert "Drafted from a danger symptom report." in client.get(r.headers["Location"]).get_data(as_text=True)


def test_a_critical_blood_count_becomes_a_graded_platelet_draft(app, client, auth, world, clock, session):
    lab = labs.record_lab(session, app.extensions["diary.study"], course=world.courses["pa"], course_day=3,
                          drawn_on=today(clock), plt=15, staff_id=world.staff["nurse_a"].id, now=clock.now)
    session.commit()
    auth.staff("nurse_a")
    r = client.post(f"/staff/labs/{lab.id}/adverse-event", data={"csrf_token": auth.csrf("/staff/")})
    assert r.status_code == 302
    [ae] = events(session)
    assert (ae.term, ae.grade, ae.source_kind, ae.onset_date) == ("platelet_count_decreased", 4, "lab_result",
                                                                  today(clock))


@pytest.mark.parametrize("backend_threads", [2])
def test_two_staff_drafting_from_one_report_at_once_get_one_ae(app, world, clock, danger_report, backend_threads):
    engine = app.extensions["diary.engine"]
    rcfg = app.extensions["diary.records"]
    barrier, ids, errors = threading.Barrier(backend_threads), [], []

    def press():
        try:
            with Session(engine, expire_on_commit=False) as s:
                report = s.get(type(danger_report), danger_report.id)
                barrier.wait()
                ae = adverse_events.draft_from_symptoms(s, rcfg, report=report, staff_id=world.staff["nurse_a"].id,
                                                        now=clock.now)
                s.commit()
                ids.append(adverse_events.chain_id(ae))
        except Exception as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=press) for _ in range(backend_threads)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    with Session(engine) as s:
        drafts = s.exec(select(AdverseEvent)).all()
    assert len(drafts) == 1
    # Whoever lost the race either got the same AE or a refusal; never a second AE.
    assert all(i == drafts[0].id for i in ids) and len(ids) + len(errors) == backend_threads


def test_an_sae_raises_a_flag_alerts_on_call_within_a_tick_and_shows_a_clock_until_reported(
        app, client, auth, world, clock, session, danger_report):
    auth.staff("nurse_a")
    client.post(f"/staff/symptoms/{danger_report.id}/adverse-event", data={"csrf_token": auth.csrf("/staff/")})
    [draft] = events(session)
    r = client.post(f"/staff/adverse-events/{draft.id}/edit", data=ae_data(
        auth, clock, term="hematuria", grade="3", serious="y", sae_criteria="hospitalisation"))
    assert r.status_code == 302
    [flag] = session.exec(select(Flag).where(Flag.kind == "sae")).all()
    assert flag.participant_id == world.participants["pa"].id

    with app.app_context():
        run_jobs(app.extensions["diary.engine"], Jobs.from_app(app), clock.now)
    session.expire_all()
    [alert] = session.exec(select(Message).where(Message.kind == "sae_alert")).all()
    assert app.extensions["diary.cipher"].decrypt(alert.to_enc) == "+8613900000000"  # the on-call phone
    assert "PA" in alert.body and "24" in alert.body

    clock.advance(hours=2)
    client.get("/staff/")  # the idle timeout signed her out meanwhile
    auth.staff("nurse_a")
    home = client.get("/staff/").get_data(as_text=True)
    assert "Serious adverse events to report" in home and "22h 00min left" in home

    r = client.post(f"/staff/adverse-events/{draft.id}/reported", data={
        "csrf_token": auth.csrf("/staff/"), "reported_date": today(clock).isoformat(), "reported_time": "10:30"})
    assert r.status_code == 403  # only an investigator marks it reported
    client.post("/staff/logout", data={"csrf_token": auth.csrf("/staff/")})
    auth.staff("investigator_a")
    r = client.post(f"/staff/adverse-events/{draft.id}/reported", data={
        "csrf_token": auth.csrf("/staff/"), "reported_date": today(clock).isoformat(), "reported_time": "10:30",
        "note": "Faxed to the sponsor's PV desk"})
    assert r.status_code == 302
    assert len(session.exec(select(SaeReport)).all()) == 1
    assert "Serious adverse events to report" not in client.get("/staff/").get_data(as_text=True)
    r = client.post(f"/staff/adverse-events/{draft.id}/reported", data={
        "csrf_token": auth.csrf("/staff/"), "reported_date": today(clock).isoformat(), "reported_time": "10:31"})
    assert r.status_code == 400 and len(session.exec(select(SaeReport)).all()) == 1


def test_an_overdue_sae_says_so_on_the_home_page(client, auth, world, clock, session):
    auth.staff("nurse_a")
    client.post(f"/staff/participants/{world.participants['pa'].id}/adverse-events/new", data=ae_data(
        auth, clock, serious="y", sae_criteria="life_threatening"))
    clock.advance(hours=25)
    client.get("/staff/")  # signed out by the idle timeout
    auth.staff("nurse_a")
    assert "SAE report overdue since" in client.get("/staff/").get_data(as_text=True)


def test_correcting_a_recorded_ae_needs_a_reason_and_keeps_the_original(client, auth, world, clock, session):
    auth.staff("nurse_a")
    client.post(f"/staff/participants/{world.participants['pa'].id}/adverse-events/new", data=ae_data(auth, clock))
    [first] = events(session)
    url = f"/staff/adverse-events/{first.id}/edit"
    r = client.post(url, data=ae_data(auth, clock, grade="3"))
    assert r.status_code == 400 and "Give a reason." in r.get_data(as_text=True)
    r = client.post(url, data=ae_data(auth, clock, grade="3", reason="Grade confirmed by the investigator"))
    assert r.status_code == 302
    old, new = events(session)
    assert (old.grade, new.grade, new.supersedes_id, new.first_id) == (2, 3, old.id, old.id)
    assert new.correction_reason == "Grade confirmed by the investigator"
    assert client.get(url).status_code == 302  # an old version opens the latest


def test_staff_of_another_site_see_and_change_nothing(client, auth, world, clock, session, danger_report):
    auth.staff("nurse_a")
    client.post(f"/staff/participants/{world.participants['pa'].id}/adverse-events/new", data=ae_data(
        auth, clock, serious="y", sae_criteria="hospitalisation"))
    [ae] = events(session)
    client.post("/staff/logout", data={"csrf_token": auth.csrf("/staff/")})
    auth.staff("nurse_b")
    assert "Serious adverse events to report" not in client.get("/staff/").get_data(as_text=True)
    token = auth.csrf("/staff/")
    for url in (f"/staff/adverse-events/{ae.id}/edit", f"/staff/symptoms/{danger_report.id}/adverse-event",
                f"/staff/participants/{world.participants['pa'].id}/adverse-events/new"):
        # Another site's rows answer as missing ones do: no oracle of which ids exist.
        assert client.post(url, data=ae_data(auth, clock, csrf_token=token, reason="x")).status_code == 404
    assert len(events(session)) == 1
