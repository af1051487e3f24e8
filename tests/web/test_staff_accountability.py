"""Drug accountability: dispensing with lot warnings, returns, reconciliation flag, corrections, site log."""

from datetime import timedelta

import pytest
from sqlmodel import select

from diary.models import AuditEvent, DrugAccountability, Flag
from diary.services import dosing
from tests.web.staff_helpers import english  # noqa: F401 - fixture

pytestmark = pytest.mark.usefixtures("english")


def today(clock):
    return (clock.now + timedelta(hours=8)).date()  # Asia/Shanghai


def dispense_data(auth, clock, **overrides):
    data = {"csrf_token": auth.csrf("/staff/"), "on_date": today(clock).isoformat(), "tablets": "28",
            "bottles": "1", "strength_mg": "2.5", "lot_number": "HT2611A",
            "expiry": (today(clock) + timedelta(days=365)).isoformat()}
    return data | overrides


def rows(session):
    session.expire_all()
    return session.exec(select(DrugAccountability).order_by(DrugAccountability.id)).all()


def log_taken(app, session, world, clock, days):
    cfg = app.extensions["diary.study"]
    for day in days:
        dosing.log_dose(session, cfg, participant=world.participants["pa"], course_id=world.courses["pa"].id, day=day,
                        outcome="taken", client_key=f"t{day}", source="staff", now=clock.now,
                        staff_id=world.staff["nurse_a"].id, correction_reason="paper diary")
    session.commit()


def test_a_nurse_records_what_she_dispensed(client, auth, world, clock, session):
    auth.staff("nurse_a")
    r = client.post(f"/staff/courses/{world.courses['pa'].id}/dispensing", data=dispense_data(auth, clock))
    assert r.status_code == 302
    [row] = rows(session)
    assert (row.kind, row.tablets, row.lot_number, row.strength_mg, row.staff_id) == (
        "dispensed", 28, "HT2611A", 2.5, world.staff["nurse_a"].id)
    assert session.exec(select(AuditEvent).where(AuditEvent.action == "drug_dispensed")).first() is not None
    page = client.get(f"/staff/participants/{world.participants['pa'].id}/accountability").get_data(as_text=True)
    assert "HT2611A" in page and "28" in page


@pytest.mark.parametrize(("overrides", "warning"), [
    ({"expiry": "2026-11-01"}, "This lot has expired."),
    ({"expiry": "2026-12-05"}, "This lot expires before the course ends."),
    ({"strength_mg": "7.5"}, "The tablet strength differs"),
])
def test_an_expired_or_wrong_strength_lot_is_shown_and_not_dispensed_until_confirmed(
        client, auth, world, clock, session, overrides, warning):
    auth.staff("nurse_a")
    url = f"/staff/courses/{world.courses['pa'].id}/dispensing"
    r = client.post(url, data=dispense_data(auth, clock, **overrides))
    assert r.status_code == 200 and warning in r.get_data(as_text=True)
    assert rows(session) == []
    r = client.post(url, data=dispense_data(auth, clock, accept_warnings="y", **overrides))
    assert r.status_code == 302
    [row] = rows(session)
    assert row.warnings and warning in client.get(
        f"/staff/participants/{world.participants['pa'].id}/accountability").get_data(as_text=True)


@pytest.mark.parametrize("overrides", [{"tablets": "-1"}, {"tablets": "many"}, {"lot_number": ""},
                                       {"on_date": "2027-01-01"}, {"strength_mg": "0"}])
def test_bad_dispensing_input_is_refused_and_changes_nothing(client, auth, world, clock, session, overrides):
    auth.staff("nurse_a")
    r = client.post(f"/staff/courses/{world.courses['pa'].id}/dispensing",
                    data=dispense_data(auth, clock, **overrides))
    assert r.status_code == 400 and "Not saved" in r.get_data(as_text=True)
    assert rows(session) == []


def test_a_return_that_leaves_tablets_unaccounted_raises_a_flag(app, client, auth, world, clock, session):
    auth.staff("nurse_a")
    course = world.courses["pa"]
    client.post(f"/staff/courses/{course.id}/dispensing", data=dispense_data(auth, clock))
    log_taken(app, session, world, clock, [1, 2, 3])  # 5 mg = 2 tablets a day: 6 taken
    r = client.post(f"/staff/courses/{course.id}/returns", data={
        "csrf_token": auth.csrf("/staff/"), "on_date": today(clock).isoformat(), "tablets": "10"})
    assert r.status_code == 302
    [flag] = session.exec(select(Flag).where(Flag.kind == "accountability")).all()
    assert "+12 tablets unaccounted" in flag.detail
    page = client.get(f"/staff/participants/{world.participants['pa'].id}/accountability").get_data(as_text=True)
    assert "+12" in page and "beyond the tolerance of 2" in page


def test_a_return_within_the_tolerance_raises_no_flag(app, client, auth, world, clock, session):
    auth.staff("nurse_a")
    course = world.courses["pa"]
    client.post(f"/staff/courses/{course.id}/dispensing", data=dispense_data(auth, clock))
    log_taken(app, session, world, clock, [1, 2, 3])
    client.post(f"/staff/courses/{course.id}/returns", data={
        "csrf_token": auth.csrf("/staff/"), "on_date": today(clock).isoformat(), "tablets": "21"})
    assert session.exec(select(Flag).where(Flag.kind == "accountability")).all() == []


def test_a_correction_supersedes_the_entry_and_needs_a_reason(client, auth, world, clock, session):
    auth.staff("nurse_a")
    course = world.courses["pa"]
    client.post(f"/staff/courses/{course.id}/returns", data={
        "csrf_token": auth.csrf("/staff/"), "on_date": today(clock).isoformat(), "tablets": "10"})
    [first] = rows(session)
    url = f"/staff/accountability/{first.id}/correct"
    r = client.post(url, data={"csrf_token": auth.csrf("/staff/"), "on_date": today(clock).isoformat(),
                               "tablets": "12", "reason": ""})
    assert r.status_code == 400 and len(rows(session)) == 1
    r = client.post(url, data={"csrf_token": auth.csrf("/staff/"), "on_date": today(clock).isoformat(),
                               "tablets": "12", "reason": "Counted again with the pharmacist"})
    assert r.status_code == 302
    old, new = rows(session)
    assert (old.tablets, new.tablets, new.supersedes_id, new.correction_reason) == (
        10, 12, old.id, "Counted again with the pharmacist")
    r = client.post(url, data={"csrf_token": auth.csrf("/staff/"), "on_date": today(clock).isoformat(),
                               "tablets": "13", "reason": "again"})
    assert r.status_code == 400 and len(rows(session)) == 2  # only the latest version can be corrected


def test_the_site_log_and_its_csv_show_only_the_staff_members_sites(client, auth, world, clock, session):
    auth.staff("nurse_a")
    client.post(f"/staff/courses/{world.courses['pa'].id}/dispensing", data=dispense_data(auth, clock))
    csv_text = client.get("/staff/accountability?format=csv").get_data(as_text=True)
    assert csv_text.splitlines()[0].startswith("study_number,cycle,kind")
    assert "PA,1,dispensed" in csv_text and "HT2611A" in csv_text
    client.post("/staff/logout", data={"csrf_token": auth.csrf("/staff/")})
    auth.staff("nurse_b")
    assert "HT2611A" not in client.get("/staff/accountability").get_data(as_text=True)
    assert "HT2611A" not in client.get("/staff/accountability?format=csv").get_data(as_text=True)
    r = client.post(f"/staff/courses/{world.courses['pa'].id}/dispensing", data=dispense_data(auth, clock))
    assert r.status_code == 404 and len(rows(session)) == 1  # as if it did not exist


def test_the_study_export_carries_the_accountability_log_with_study_numbers(client, auth, world, clock):
    import csv
    import io
    import zipfile

    auth.staff("nurse_a")
    client.post(f"/staff/courses/{world.courses['pa'].id}/dispensing", data=dispense_data(auth, clock))
    client.post("/staff/logout", data={"csrf_token": auth.csrf("/staff/")})
    auth.staff("investigator_a")
    r = client.post("/staff/export", data={"csrf_token": auth.csrf("/staff/export")})
    archive = zipfile.ZipFile(io.BytesIO(r.data))
    [row] = list(csv.DictReader(io.StringIO(archive.read("drug_accountability.csv").decode())))
    assert (row["study_number"], row["kind"], row["tablets"], row["lot_number"]) == ("PA", "dispensed", "28", "HT2611A")
    dictionary = archive.read("data_dictionary.csv").decode()
    assert "drug_accountability.csv,lot_number" in dictionary and "adverse_events.csv,sae_criteria" in dictionary
