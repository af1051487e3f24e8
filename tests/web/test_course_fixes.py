"""Issue 10, finding 7: a mistyped infusion date is questioned, and an investigator can void a course
(entered in error) or end it early, signed and audited."""

from datetime import timedelta

import pytest
from sqlmodel import select

from diary.models import AuditEvent, Course
from tests.conftest import PASSWORD
from tests.web.staff_helpers import english  # noqa: F401 - fixture
from tests.web.test_staff_export_audit import download

pytestmark = pytest.mark.usefixtures("english")


def _today(clock):
    return (clock.now + timedelta(hours=8)).date()


def _open(client, auth, participant, infusion, **extra):
    data = {"csrf_token": auth.csrf("/staff/"), "adc_drug": "trastuzumab_deruxtecan",
            "infusion_date": infusion.isoformat(), "start_date": ""} | extra
    return client.post(f"/staff/participants/{participant.id}/courses", data=data)


def _courses(session, participant):
    session.expire_all()
    return session.exec(select(Course).where(Course.participant_id == participant.id)
                        .order_by(Course.cycle_number)).all()


def test_an_infusion_date_far_from_today_is_shown_back_before_it_is_saved(client, auth, world, session, clock):
    auth.staff("nurse_a")
    pa = world.participants["pa"]
    far = _today(clock) + timedelta(days=400)
    r = _open(client, auth, pa, far)
    assert r.status_code == 200 and "is more than 28 days from today" in r.get_data(as_text=True)
    assert len(_courses(session, pa)) == 1

    assert _open(client, auth, pa, far, confirmed="1").status_code == 302
    assert [c.infusion_date for c in _courses(session, pa)][-1] == far


def test_an_infusion_date_inside_a_running_course_is_shown_back(client, auth, world, session, clock):
    auth.staff("nurse_a")
    r = _open(client, auth, world.participants["pa"], _today(clock))
    assert "falls inside a course that is still running" in r.get_data(as_text=True)
    assert len(_courses(session, world.participants["pa"])) == 1


def _void(client, auth, course, **fields):
    data = {"csrf_token": auth.csrf("/staff/"), "reason": "typed the wrong year", "password": PASSWORD} | fields
    return client.post(f"/staff/courses/{course.id}/void", data=data)


def test_only_an_investigator_can_void_and_only_with_a_reason_and_the_password(client, auth, world, session):
    course = world.courses["pa"]
    auth.staff("nurse_a")
    assert _void(client, auth, course).status_code == 403
    auth.staff("investigator_a")
    assert _void(client, auth, course, password="wrong").status_code == 401
    assert _void(client, auth, course, reason="").status_code == 400
    session.expire_all()
    assert session.get(Course, course.id).voided_at is None

    assert _void(client, auth, course).status_code == 302
    session.expire_all()
    assert session.get(Course, course.id).voided_at is not None
    event = session.exec(select(AuditEvent).where(AuditEvent.action == "course_voided")).one()
    assert event.reason == "typed the wrong year" and event.actor == f"staff:{world.staff['investigator_a'].id}"


def test_a_voided_course_leaves_the_diary_and_adherence_but_stays_in_the_export(client, auth, world, session):
    course = world.courses["pa"]
    auth.staff("investigator_a")
    # The study number as the grid links it ("PA" alone also turns up inside a random CSRF token).
    linked = f'>{world.participants["pa"].study_number}</a>'
    assert linked in client.get("/staff/adherence?state=").get_data(as_text=True)
    _void(client, auth, course)
    grid = client.get("/staff/adherence?state=").get_data(as_text=True)
    assert linked not in grid
    archive = download(client, auth, "admin")
    assert "typed the wrong year" in archive.read("courses.csv").decode()

    auth.participant("pa")
    html = client.get("/").get_data(as_text=True)
    assert "No study tablets today" in html and "I took it" not in html


def test_a_voided_course_no_longer_blocks_the_real_cycle(client, auth, world, session, clock):
    pa = world.participants["pa"]
    auth.staff("investigator_a")
    assert _open(client, auth, pa, _today(clock) - timedelta(days=1), confirmed="1").status_code == 302
    assert len(_courses(session, pa)) == 1  # refused: it overlaps the running course
    _void(client, auth, world.courses["pa"])
    assert _open(client, auth, pa, _today(clock) - timedelta(days=1), confirmed="1").status_code == 302
    assert len(_courses(session, pa)) == 2


def _end(client, auth, course, **fields):
    data = {"csrf_token": auth.csrf("/staff/"), "last_day": "2", "reason": "PLT ≥ 100, stopped",
            "password": PASSWORD} | fields
    return client.post(f"/staff/courses/{course.id}/end-early", data=data)


def test_ending_a_course_early_makes_later_days_neither_due_nor_missed(client, auth, world, session):
    course = world.courses["pa"]
    auth.staff("investigator_a")
    assert _end(client, auth, course, last_day="14").status_code == 400
    assert _end(client, auth, course).status_code == 302
    session.expire_all()
    assert session.get(Course, course.id).last_day == 2
    assert session.exec(select(AuditEvent).where(AuditEvent.action == "course_ended_early")).one().reason == \
        "PLT ≥ 100, stopped"

    auth.participant("pa")
    html = client.get("/").get_data(as_text=True)  # day 3; day 2 may still be recorded late
    assert "Do not take your study tablets (hetrombopag) today." in html
    assert "hetrombopag (2 tablets) today" not in html
