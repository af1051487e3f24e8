"""Issue 10 on the staff side: critical counts confirmed before saving (6), the participant's own
words reaching staff (12), the site's platelet LLN (14)."""

import pytest
from sqlmodel import select

from diary.models import Flag, LabResult, Screening, Site
from diary.services import symptoms
from tests.web.staff_helpers import english  # noqa: F401 - fixture
from tests.web.test_staff_decisions import enter_lab
from tests.web.test_staff_enrolment import screening_form

pytestmark = pytest.mark.usefixtures("english")


# --- critical PLT (finding 6) -------------------------------------------------------------------

@pytest.mark.parametrize("plt", ["0", "7", "10"])
def test_a_critically_low_plt_is_not_saved_until_the_nurse_confirms_it(client, auth, world, session, plt):
    auth.staff("nurse_a")
    course = world.courses["pa"]
    r = enter_lab(client, auth, course, plt=plt)
    html = r.get_data(as_text=True)
    assert r.status_code == 400 and "is critical. Check the report for a typo" in html
    assert "I have checked the report: this very low PLT is correct" in html
    assert session.exec(select(LabResult)).all() == []

    r = enter_lab(client, auth, course, plt=plt, confirm_low="y")
    assert r.status_code == 302
    assert session.exec(select(LabResult.plt)).one() == float(plt)
    assert session.exec(select(Flag.kind)).one() == "urgent_plt"


def test_a_low_count_above_the_second_tier_needs_no_confirmation(client, auth, world, session):
    auth.staff("nurse_a")
    assert enter_lab(client, auth, world.courses["pa"], plt="15").status_code == 302
    assert session.exec(select(Flag.kind)).one() == "urgent_plt"


def test_a_correction_to_a_critically_low_count_is_confirmed_too(client, auth, world, session):
    auth.staff("nurse_a")
    enter_lab(client, auth, world.courses["pa"], plt="40")
    lab = session.exec(select(LabResult)).one()
    data = {"csrf_token": auth.csrf("/staff/"), "course_day": "3", "drawn_on": "2026-12-01", "plt": "4",
            "reason": "Typo: 4 not 40"}
    r = client.post(f"/staff/labs/{lab.id}/correct", data=data)
    assert r.status_code == 400 and "is critical" in r.get_data(as_text=True)
    assert client.post(f"/staff/labs/{lab.id}/correct", data=data | {"confirm_low": "y"}).status_code == 302
    assert len(session.exec(select(LabResult)).all()) == 2


# --- the participant's note (finding 12) --------------------------------------------------------

def _report(app, session, world, clock, key, note, **answers):
    report = symptoms.report_symptoms(
        session, app.extensions["diary.study"], participant=world.participants["pa"],
        symptoms=[{"key": k, "severity": v} for k, v in answers.items()], noticed_at=clock.now,
        client_key=key, source="participant", now=clock.now, course_id=world.courses["pa"].id, note=note)
    session.commit()
    return report


def test_the_note_with_a_danger_report_is_on_the_flag(client, auth, app, session, world, clock):
    _report(app, session, world, clock, "n1", "bleeding since last night", black_or_bloody_stool="severe")
    auth.staff("nurse_a")
    assert "bleeding since last night" in session.exec(select(Flag.detail)).one()
    assert "bleeding since last night" in client.get("/staff/flags").get_data(as_text=True)


def test_a_note_with_a_routine_report_raises_a_message_flag(client, auth, app, session, world, clock):
    _report(app, session, world, clock, "n2", "my gums bled when brushing", gum_bleeding="mild")
    [flag] = session.exec(select(Flag)).all()
    assert flag.kind == "participant_message" and "my gums bled when brushing" in flag.detail


def test_a_routine_report_without_a_note_raises_no_flag(app, session, world, clock):
    _report(app, session, world, clock, "n3", None, bruising="mild")
    assert session.exec(select(Flag)).all() == []


def test_the_note_is_on_the_participant_page_and_in_the_timeline(client, auth, app, session, world, clock):
    _report(app, session, world, clock, "n4", "left arm, getting bigger", bruising="moderate")
    auth.staff("nurse_a")
    html = client.get(f"/staff/participants/{world.participants['pa'].id}").get_data(as_text=True)
    symptoms_table, timeline = html.split('id="timeline"')
    assert "left arm, getting bigger" in symptoms_table and "left arm, getting bigger" in timeline


# --- the site's platelet LLN (finding 14) -------------------------------------------------------

def test_grade_1_follows_the_sites_own_lower_limit_of_normal(client, auth, world, session):
    auth.staff("nurse_a")
    r = enter_lab(client, auth, world.courses["pa"], plt="110", course_day="0")
    assert "CTCAE grade 1" in client.get(r.headers["Location"]).get_data(as_text=True)  # default LLN 125
    site = session.get(Site, world.sites["A"].id)
    site.plt_lln = 100
    session.add(site)
    session.commit()
    r = enter_lab(client, auth, world.courses["pa"], plt="110", course_day="0")
    assert "CTCAE grade 0" in client.get(r.headers["Location"]).get_data(as_text=True)


# --- creatinine units at screening (finding 3) --------------------------------------------------

def test_creatinine_typed_in_mg_dl_under_micromoles_is_refused_and_signs_nothing(client, auth, world, clock,
                                                                                   session):
    # The review's case: Cr 1.8 meant as mg/dL, entered under the default µmol/L with ULN 84.
    auth.staff("nurse_a")
    r = client.post("/staff/screenings/new", data=screening_form(auth, world, clock, creatinine="1.8"))
    assert r.status_code == 400
    assert "not plausible in the unit chosen" in r.get_data(as_text=True)
    assert session.exec(select(Screening)).all() == []


def test_an_impossible_creatinine_clearance_is_refused(client, auth, world, clock, session):
    auth.staff("nurse_a")
    data = screening_form(auth, world, clock, creatinine="20", age_years="20", weight_kg="150", sex="male")
    r = client.post("/staff/screenings/new", data=data)
    assert r.status_code == 400 and "above any a kidney can reach" in r.get_data(as_text=True)
    assert session.exec(select(Screening)).all() == []


def test_checking_shows_the_converted_creatinine_and_the_clearance_before_signing(client, auth, world, clock,
                                                                                   session):
    auth.staff("nurse_a")
    data = screening_form(auth, world, clock, password="", check="1")
    r = client.post("/staff/screenings/new", data=data)
    html = r.get_data(as_text=True)
    assert r.status_code == 200 and "Check before signing (not signed yet)" in html
    assert "62 µmol/L = 0.70 mg/dL" in html and "88.9 mL/min" in html
    assert "Eligible: every criterion is met." in html
    assert session.exec(select(Screening)).all() == []
