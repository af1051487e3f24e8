"""The participant report: adherence, last PLT and nadir, open flags, deviations and SAEs; sortable; CSV."""

import csv
import io

import pytest

from diary.services import adverse_events, conmeds, dosing, labs
from tests.web.staff_helpers import english  # noqa: F401 - fixture

pytestmark = pytest.mark.usefixtures("english")


@pytest.fixture
def records(app, session, world, clock):
    cfg, rcfg = app.extensions["diary.study"], app.extensions["diary.records"]
    pa, course, nurse = world.participants["pa"], world.courses["pa"], world.staff["nurse_a"].id
    for day in (1, 2):
        dosing.log_dose(session, cfg, participant=pa, course_id=course.id, day=day, outcome="taken",
                        client_key=f"r{day}", source="staff", now=clock.now, staff_id=nurse,
                        correction_reason="paper diary")
    today = clock.now.date()
    labs.record_lab(session, cfg, course=course, course_day=1, drawn_on=today, plt=60, staff_id=nurse, now=clock.now)
    labs.record_lab(session, cfg, course=course, course_day=3, drawn_on=today, plt=90, staff_id=nurse, now=clock.now)
    conmeds.record(session, cfg, rcfg, participant=pa, drug="rhTPO", start_date=today, staff_id=nurse, now=clock.now)
    adverse_events.record(session, rcfg, participant=pa, staff_id=nurse, now=clock.now, values=adverse_events.AeValues(
        term="epistaxis", term_text=None, grade=3, onset_date=today, end_date=None, serious=True,
        sae_criteria=("hospitalisation",), relatedness="possible", action="drug_interrupted", outcome="recovering"))
    session.commit()


def test_the_report_shows_each_participants_figures_and_downloads_as_csv(client, auth, world, records):
    auth.staff("admin")
    html = client.get("/staff/reports").get_data(as_text=True)
    assert "Unreported SAEs" in html and ">PA<" in html and ">PB<" in html
    rows = {r["study_number"]: r for r in csv.DictReader(io.StringIO(
        client.get("/staff/reports?format=csv").get_data(as_text=True)))}
    pa = rows["PA"]
    assert (pa["last_plt"], pa["nadir_plt"], pa["nadir_grade"]) == ("90", "60", "2")
    assert (pa["open_deviations"], pa["open_saes"], pa["doses_taken"]) == ("1", "1", "2")
    assert rows["PB"]["open_saes"] == "0" and rows["PB"]["last_plt"] == ""


def test_the_report_sorts_by_any_column_with_empty_values_last(client, auth, world, records):
    auth.staff("admin")
    order = [r["study_number"] for r in csv.DictReader(io.StringIO(
        client.get("/staff/reports?format=csv&sort=open_saes&dir=desc").get_data(as_text=True)))]
    assert order == ["PA", "PB"]
    order = [r["study_number"] for r in csv.DictReader(io.StringIO(
        client.get("/staff/reports?format=csv&sort=last_plt&dir=asc").get_data(as_text=True)))]
    assert order == ["PA", "PB"]  # PB has no blood count: last either way
    assert client.get("/staff/reports?sort=nonsense").status_code == 200


def test_a_nurse_sees_only_her_sites_participants(client, auth, world, records):
    auth.staff("nurse_b")
    text = client.get("/staff/reports?format=csv").get_data(as_text=True)
    assert "PB" in text and "PA" not in text
    assert ">PA<" not in client.get("/staff/reports").get_data(as_text=True)
