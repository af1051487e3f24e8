"""Concomitant medications against the prohibited list, and the protocol-deviation log."""

from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest
from sqlmodel import select

from diary.models import AuditEvent, ConcomitantMedication, ProtocolDeviation
from diary.services import dosing
from tests.web.staff_helpers import english  # noqa: F401 - fixture

pytestmark = pytest.mark.usefixtures("english")
SHANGHAI = ZoneInfo("Asia/Shanghai")


def today(clock):
    return clock.now.astimezone(SHANGHAI).date()


def conmed(auth, clock, **overrides):
    data = {"csrf_token": auth.csrf("/staff/"), "drug": "Paracetamol", "dose": "500 mg", "route": "oral",
            "start_date": today(clock).isoformat(), "indication": "headache"}
    return data | overrides


def rows(session, model):
    session.expire_all()
    return session.exec(select(model).order_by(model.id)).all()


def test_a_nurse_records_a_medication_with_every_field(client, auth, world, clock, session):
    auth.staff("nurse_a")
    pa = world.participants["pa"].id
    r = client.post(f"/staff/participants/{pa}/conmeds", data=conmed(auth, clock))
    assert r.status_code == 302
    [c] = rows(session, ConcomitantMedication)
    assert (c.drug, c.dose, c.route, c.start_date, c.stop_date, c.indication, c.matched) == (
        "Paracetamol", "500 mg", "oral", today(clock), None, "headache", [])
    assert session.exec(select(AuditEvent).where(AuditEvent.action == "conmed_recorded")).first()
    assert rows(session, ProtocolDeviation) == []
    assert "Paracetamol" in client.get(f"/staff/participants/{pa}").get_data(as_text=True)  # timeline


def test_a_prohibited_medicine_during_a_course_warns_and_proposes_a_deviation(client, auth, world, clock, session):
    auth.staff("nurse_a")
    pa = world.participants["pa"].id
    r = client.post(f"/staff/participants/{pa}/conmeds", data=conmed(auth, clock, drug="Eltrombopag 25 mg"),
                    follow_redirects=True)
    html = r.get_data(as_text=True)
    assert "Prohibited by the protocol: Another TPO-receptor agonist" in html
    assert "NCT07243418 exclusion" in html  # the rule's source is shown
    assert "A protocol deviation is proposed" in html
    [dev] = rows(session, ProtocolDeviation)
    assert (dev.status, dev.category, dev.found_by) == ("proposed", "prohibited_medication", "system")


def test_a_restricted_medicine_warns_without_proposing_a_deviation(client, auth, world, clock, session):
    auth.staff("nurse_a")
    r = client.post(f"/staff/participants/{world.participants['pa'].id}/conmeds",
                    data=conmed(auth, clock, drug="Calcium carbonate"), follow_redirects=True)
    assert "Restricted by the protocol: Polyvalent cations" in r.get_data(as_text=True)
    assert rows(session, ProtocolDeviation) == []


def test_a_prohibited_medicine_stopped_long_before_the_course_proposes_nothing(client, auth, world, clock, session):
    auth.staff("nurse_a")
    client.post(f"/staff/participants/{world.participants['pa'].id}/conmeds", data=conmed(
        auth, clock, drug="Palbociclib", start_date=(today(clock) - timedelta(days=90)).isoformat(),
        stop_date=(today(clock) - timedelta(days=30)).isoformat()))
    [c] = rows(session, ConcomitantMedication)
    assert c.matched == ["cdk46"] and rows(session, ProtocolDeviation) == []


@pytest.mark.parametrize("overrides", [{"drug": ""}, {"start_date": "2027-06-01"},
                                       {"stop_date": "2026-01-01"}, {"start_date": "yesterday"}])
def test_bad_medication_input_is_refused_and_changes_nothing(client, auth, world, clock, session, overrides):
    auth.staff("nurse_a")
    r = client.post(f"/staff/participants/{world.participants['pa'].id}/conmeds",
                    data=conmed(auth, clock, **overrides))
    assert r.status_code == 400 and "Not saved" in r.get_data(as_text=True)
    assert rows(session, ConcomitantMedication) == []


def test_a_medication_correction_needs_a_reason_and_supersedes(client, auth, world, clock, session):
    auth.staff("nurse_a")
    client.post(f"/staff/participants/{world.participants['pa'].id}/conmeds", data=conmed(auth, clock))
    [first] = rows(session, ConcomitantMedication)
    url = f"/staff/conmeds/{first.id}/correct"
    assert client.post(url, data=conmed(auth, clock, dose="1 g")).status_code == 400
    r = client.post(url, data=conmed(auth, clock, dose="1 g", reason="Dose misread from the box"))
    assert r.status_code == 302
    old, new = rows(session, ConcomitantMedication)
    assert (new.dose, new.supersedes_id, new.correction_reason) == ("1 g", old.id, "Dose misread from the box")


def log(app, session, world, day, taken_at):
    dosing.log_dose(session, app.extensions["diary.study"], participant=world.participants["pa"],
                    course_id=world.courses["pa"].id, day=day, outcome="taken", client_key=f"k{day}", source="staff",
                    now=session.info.get("now") or taken_at + timedelta(days=2), taken_at=taken_at,
                    staff_id=world.staff["nurse_a"].id, correction_reason="paper diary")


def test_the_log_proposes_doses_too_close_and_outside_their_day_once(app, client, auth, world, clock, session):
    day1 = world.courses["pa"].start_date
    session.info["now"] = clock.now
    # Day 1 taken late on day 2 at 06:00; day 2 taken at 09:00: 3 h apart and day 1 outside its day.
    log(app, session, world, 1, datetime.combine(day1 + timedelta(days=1), time(6, 0), SHANGHAI))
    log(app, session, world, 2, datetime.combine(day1 + timedelta(days=1), time(9, 0), SHANGHAI))
    session.commit()
    auth.staff("nurse_a")
    url = f"/staff/participants/{world.participants['pa'].id}/deviations"
    html = client.get(url).get_data(as_text=True)
    assert "outside its day" in html and "3.0 h apart" in html
    client.get(url)
    assert sorted(d.finding_key.split(":")[0] for d in rows(session, ProtocolDeviation)) == [
        "outside_day", "too_close"]  # opening the page again proposes nothing new


def test_staff_confirm_or_dismiss_a_proposal_and_an_investigator_closes_it(
        client, auth, world, clock, session):
    auth.staff("nurse_a")
    pa = world.participants["pa"].id
    client.post(f"/staff/participants/{pa}/conmeds", data=conmed(auth, clock, drug="rhTPO 15000 U"))
    [proposal] = rows(session, ProtocolDeviation)
    decide = f"/staff/deviations/{proposal.id}/decision"
    r = client.post(decide, data={"csrf_token": auth.csrf("/staff/"), "action": "dismiss", "reason": ""})
    assert r.status_code == 400 and "Give a reason." in r.get_data(as_text=True)
    r = client.post(decide, data={"csrf_token": auth.csrf("/staff/"), "action": "confirm"})
    assert r.status_code == 400 and "minor or major" in r.get_data(as_text=True)
    r = client.post(decide, data={"csrf_token": auth.csrf("/staff/"), "action": "confirm", "classification": "major"})
    assert r.status_code == 302
    confirmed = rows(session, ProtocolDeviation)[-1]
    assert (confirmed.status, confirmed.classification, confirmed.supersedes_id) == ("confirmed", "major", proposal.id)
    assert "rhTPO" in client.get("/staff/deviations").get_data(as_text=True)
    close = f"/staff/deviations/{confirmed.id}/decision"
    r = client.post(close, data={"csrf_token": auth.csrf("/staff/"), "action": "close", "reason": "Sponsor told"})
    assert r.status_code == 403 and len(rows(session, ProtocolDeviation)) == 2
    client.post("/staff/logout", data={"csrf_token": auth.csrf("/staff/")})
    auth.staff("investigator_a")
    r = client.post(close, data={"csrf_token": auth.csrf("/staff/"), "action": "close",
                                 "reason": "Reported to the sponsor and the ethics committee"})
    assert r.status_code == 302
    assert rows(session, ProtocolDeviation)[-1].status == "closed"
    assert "rhTPO" not in client.get("/staff/deviations").get_data(as_text=True)
    r = client.post(decide, data={"csrf_token": auth.csrf("/staff/"), "action": "dismiss", "reason": "x"})
    assert r.status_code == 400 and len(rows(session, ProtocolDeviation)) == 3  # an old version cannot change


def test_staff_log_a_deviation_they_found_with_a_classification(client, auth, world, clock, session):
    auth.staff("nurse_a")
    url = f"/staff/participants/{world.participants['pa'].id}/deviations"
    data = {"csrf_token": auth.csrf("/staff/"), "category": "visit_window", "description": "Day 7 draw on day 9",
            "occurred_on": today(clock).isoformat()}
    assert client.post(url, data=data).status_code == 400
    assert client.post(url, data=data | {"classification": "minor"}).status_code == 302
    [dev] = rows(session, ProtocolDeviation)
    assert (dev.status, dev.found_by, dev.classification) == ("confirmed", f"staff:{world.staff['nurse_a'].id}",
                                                              "minor")


def test_another_sites_nurse_sees_no_deviations_or_medications(client, auth, world, clock, session):
    auth.staff("nurse_a")
    client.post(f"/staff/participants/{world.participants['pa'].id}/conmeds", data=conmed(auth, clock, drug="rhTPO"))
    [dev] = rows(session, ProtocolDeviation)
    client.post("/staff/logout", data={"csrf_token": auth.csrf("/staff/")})
    auth.staff("nurse_b")
    assert "rhTPO" not in client.get("/staff/deviations").get_data(as_text=True)
    r = client.post(f"/staff/deviations/{dev.id}/decision", data={
        "csrf_token": auth.csrf("/staff/"), "action": "dismiss", "reason": "x"})
    assert r.status_code == 404 and len(rows(session, ProtocolDeviation)) == 1  # as if it did not exist


def test_a_dose_the_participant_took_during_a_review_pause_is_proposed_as_a_deviation(
        app, client, auth, world, clock, session):
    from diary.services import symptoms

    cfg = app.extensions["diary.study"]
    pa = world.participants["pa"]
    symptoms.report_symptoms(session, cfg, participant=pa, symptoms=[{"key": "black_or_bloody_stool"}],
                             noticed_at=clock.now, client_key="danger-1", source="participant", now=clock.now,
                             course_id=world.courses["pa"].id)
    session.commit()
    clock.advance(hours=1)
    # Today is course day 3; the pause covers it, yet she took her tablets and says so.
    dosing.log_dose(session, cfg, participant=pa, course_id=world.courses["pa"].id, day=3, outcome="taken",
                    client_key="paused-dose", source="participant", now=clock.now, taken_at=clock.now)
    session.commit()
    auth.staff("nurse_a")
    html = client.get(f"/staff/participants/{pa.id}/deviations").get_data(as_text=True)
    assert "during a clinical-review pause" in html
    assert [d.finding_key for d in rows(session, ProtocolDeviation)] == [f"paused_dose:{world.courses['pa'].id}:3"]


def test_the_site_list_proposes_what_it_sees_without_opening_each_participant(
        app, client, auth, world, clock, session):
    day1 = world.courses["pa"].start_date
    session.info["now"] = clock.now
    log(app, session, world, 1, datetime.combine(day1 + timedelta(days=1), time(6, 0), SHANGHAI))
    session.commit()
    auth.staff("nurse_b")  # another site: sees and proposes nothing of site A
    assert "outside its day" not in client.get("/staff/deviations").get_data(as_text=True)
    client.post("/staff/logout", data={"csrf_token": auth.csrf("/staff/")})
    auth.staff("nurse_a")
    html = client.get("/staff/deviations").get_data(as_text=True)
    assert "outside its day" in html and "PA" in html
    client.get("/staff/deviations")
    assert [d.finding_key.split(":")[0] for d in rows(session, ProtocolDeviation)] == ["outside_day"]
