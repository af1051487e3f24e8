"""Blood counts and signed dose decisions, as the participant then sees them."""

import re

import pytest
from sqlmodel import select

from diary.models import AuditEvent, DoseDecision, Flag, LabResult, Message, StaffUser
from tests.conftest import PASSWORD
from tests.web.staff_helpers import english  # noqa: F401 - fixture

pytestmark = pytest.mark.usefixtures("english")


def enter_lab(client, auth, course, **fields):
    data = {"csrf_token": auth.csrf("/staff/"), f"c{course.id}-course_day": "3",
            f"c{course.id}-drawn_on": "2026-12-01", f"c{course.id}-plt": "40"}
    data.update({f"c{course.id}-{k}": v for k, v in fields.items()})
    return client.post(f"/staff/courses/{course.id}/labs", data=data)


def sign(client, auth, course, lab_id, **fields):
    data = {"csrf_token": auth.csrf("/staff/"), "lab_id": str(lab_id), "effective_day": "3",
            "dose_mg": "7.5", "override_reason": "", "password": PASSWORD}
    data.update(fields)
    return client.post(f"/staff/courses/{course.id}/decision", data=data)


def test_a_plt_entry_shows_its_grade_and_leads_to_the_proposal(client, auth, world, session):
    auth.staff("nurse_a")
    course = world.courses["pa"]
    r = enter_lab(client, auth, course, plt="40")
    lab = session.exec(select(LabResult)).one()
    assert r.status_code == 302 and r.headers["Location"].endswith(f"/decision?lab={lab.id}")
    html = client.get(r.headers["Location"]).get_data(as_text=True)
    assert "CTCAE grade 3" in html
    assert "R3: PLT &lt; 50" in html or "R3: PLT < 50" in html
    assert "never applied by itself" in html
    assert session.exec(select(DoseDecision)).all() == []  # a proposal does not apply itself


def test_an_implausible_plt_is_refused_with_the_plausible_range(client, auth, world, session):
    auth.staff("nurse_a")
    r = enter_lab(client, auth, world.courses["pa"], plt="4000")
    assert r.status_code == 400
    assert "PLT must be between 0 and 1500 ×10⁹/L" in r.get_data(as_text=True)
    assert session.exec(select(LabResult)).all() == []


def test_a_plt_that_is_not_a_number_is_refused(client, auth, world, session):
    auth.staff("nurse_a")
    r = enter_lab(client, auth, world.courses["pa"], plt="abc")
    assert r.status_code == 400 and session.exec(select(LabResult)).all() == []


def test_a_draw_date_in_the_future_is_refused(client, auth, world, session):
    auth.staff("nurse_a")
    r = enter_lab(client, auth, world.courses["pa"], drawn_on="2027-01-01")
    assert r.status_code == 400 and "cannot be in the future" in r.get_data(as_text=True)


def test_an_implausible_hb_is_refused(client, auth, world, session):
    auth.staff("nurse_a")
    r = enter_lab(client, auth, world.courses["pa"], hb="999")
    assert r.status_code == 400 and "Hb must be between 20 and 250 g/L" in r.get_data(as_text=True)


def test_an_urgent_plt_raises_a_flag(client, auth, world, session):
    auth.staff("nurse_a")
    enter_lab(client, auth, world.courses["pa"], plt="15")
    assert session.exec(select(Flag.kind)).all() == ["urgent_plt"]


def test_the_course_nadir_and_its_grade_are_shown(client, auth, world, session):
    auth.staff("nurse_a")
    course = world.courses["pa"]
    enter_lab(client, auth, course, plt="80", course_day="1", drawn_on="2026-11-29")
    enter_lab(client, auth, course, plt="45", course_day="3")
    html = client.get(f"/staff/participants/{world.participants['pa'].id}").get_data(as_text=True)
    assert "Course nadir: PLT 45×10⁹/L, CTCAE grade 3." in html


def test_an_investigator_signs_a_hold_and_the_participants_today_page_follows(client, auth, world, session):
    course = world.courses["pa"]
    auth.staff("nurse_a")
    enter_lab(client, auth, course, plt="120")
    lab = session.exec(select(LabResult)).one()
    client.post("/staff/logout", data={"csrf_token": auth.csrf("/staff/")})
    auth.staff("investigator_a")
    r = sign(client, auth, course, lab.id, dose_mg="0")
    assert r.status_code == 302, r.get_data(as_text=True)
    decision = session.exec(select(DoseDecision)).one()
    assert (decision.dose_mg, decision.action, decision.effective_day) == (0, "hold", 3)
    assert decision.suggested_action == "hold" and decision.rule.startswith("R1")
    assert decision.decided_by == world.staff["investigator_a"].id
    # The dose-change SMS is queued in the same transaction.
    message = session.exec(select(Message).where(Message.kind == "dose_change")).one()
    assert message.dedupe_key == f"dose_change:{decision.id}"
    assert "pause your study tablets" in message.body and message.course_day == 3
    event = session.exec(select(AuditEvent).where(AuditEvent.action == "dose_decision_signed")).one()
    assert event.entity_id == str(decision.id)
    client.post("/staff/logout", data={"csrf_token": auth.csrf("/staff/")})
    auth.participant("pa")
    assert "Do not take your study tablets (hetrombopag) today." in client.get("/").get_data(as_text=True)


def test_an_override_needs_a_reason(client, auth, world, session):
    course = world.courses["pa"]
    auth.staff("investigator_a")
    enter_lab(client, auth, course, plt="40")  # suggestion: increase to 7.5 mg
    lab = session.exec(select(LabResult)).one()
    r = sign(client, auth, course, lab.id, dose_mg="5")
    assert r.status_code == 400 and "give a reason" in r.get_data(as_text=True)
    assert session.exec(select(DoseDecision)).all() == []
    r = sign(client, auth, course, lab.id, dose_mg="5", override_reason="Platelets recovering on their own")
    assert r.status_code == 302
    decision = session.exec(select(DoseDecision)).one()
    assert decision.override_reason == "Platelets recovering on their own" and decision.suggested_dose_mg == 7.5


def test_a_decision_is_effective_from_the_chosen_day(client, auth, world, session, clock):
    from diary import course_record
    from diary.services.course_records import load_record

    course = world.courses["pa"]
    auth.staff("investigator_a")
    enter_lab(client, auth, course, plt="40")
    lab = session.exec(select(LabResult)).one()
    sign(client, auth, course, lab.id, dose_mg="7.5", effective_day="5")
    plan = course_record.course_days(load_record(session, course.id), world_cfg(client), clock.now)
    assert [d.dose_mg for d in plan[2:6]] == [5.0, 5.0, 7.5, 7.5]


def world_cfg(client):
    return client.application.extensions["diary.study"]


def test_a_wrong_password_signs_nothing_and_counts_towards_the_lock_out(client, auth, world, session):
    course = world.courses["pa"]
    auth.staff("investigator_a")
    enter_lab(client, auth, course, plt="40")
    lab = session.exec(select(LabResult)).one()
    r = sign(client, auth, course, lab.id, password="not my password")
    assert r.status_code == 401 and "nothing was signed" in r.get_data(as_text=True)
    assert session.exec(select(DoseDecision)).all() == []
    session.expire_all()
    assert session.get(StaffUser, world.staff["investigator_a"].id).failed_logins == 1


def test_the_participant_page_shows_the_plt_chart_as_inline_svg_without_style_attributes(client, auth, world):
    auth.staff("investigator_a")
    course = world.courses["pa"]
    enter_lab(client, auth, course, plt="40")
    html = client.get(f"/staff/participants/{world.participants['pa'].id}").get_data(as_text=True)
    svg = html[html.index('<svg xmlns="http://www.w3.org/2000/svg" viewBox'):]
    svg = svg[:svg.index("</svg>")]
    assert "G4" in svg and "G1" in svg  # CTCAE bands are labelled, not only coloured
    assert "stroke-dasharray" in svg  # draw days
    assert "day 3: PLT 40" in svg
    assert not re.search(r"\sstyle=", html) and "<script>" not in html


def test_a_lab_correction_needs_a_reason_and_supersedes(client, auth, world, session):
    auth.staff("nurse_a")
    course = world.courses["pa"]
    enter_lab(client, auth, course, plt="40")
    lab = session.exec(select(LabResult)).one()
    data = {"csrf_token": auth.csrf("/staff/"), "course_day": "3", "drawn_on": "2026-12-01", "plt": "140",
            "reason": ""}
    assert client.post(f"/staff/labs/{lab.id}/correct", data=data).status_code == 400
    data["reason"] = "Typo: 140 not 40"
    assert client.post(f"/staff/labs/{lab.id}/correct", data=data).status_code == 302
    rows = session.exec(select(LabResult).order_by(LabResult.id)).all()
    assert [(r.plt, r.supersedes_id) for r in rows] == [(40, None), (140, lab.id)]
    assert session.exec(select(AuditEvent).where(AuditEvent.action == "lab_superseded")).one().reason == \
        "Typo: 140 not 40"
