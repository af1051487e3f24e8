"""Tablets taken on a day held by a signed decision: recorded as taken, shown to staff, proposed as a
protocol deviation (issue 10, item 10)."""

import pytest
from sqlmodel import select

from diary.models import DoseDecision, Flag, ProtocolDeviation
from diary.services import deviations, dosing
from diary.services.dosing import DoseLogError
from tests.web.patient_helpers import csrf, day_url, logs, post
from tests.web.staff_helpers import english  # noqa: F401 - fixture


@pytest.fixture
def held(session, world):
    """Course day 3 (today) of PA held: 0 mg from day 3."""
    session.add(DoseDecision(course_id=world.courses["pa"].id, effective_day=3, dose_mg=0, action="hold",
                             decided_by=world.staff["investigator_a"].id))
    session.commit()


def _took_anyway(session, app, world, clock, key="anyway-1", source="participant"):
    log = dosing.log_dose(session, app.extensions["diary.study"], participant=world.participants["pa"],
                          course_id=world.courses["pa"].id, day=3, outcome="taken", client_key=key, source=source,
                          now=clock.now, taken_at=clock.now)
    session.commit()
    return log


def _card(page: str, world, day: int) -> str:
    start = page.index(f'id="day-{world.courses["pa"].id}-{day}"')
    return page[start:page.index("</section>", start)]


def _flags(session):
    session.expire_all()
    return session.exec(select(Flag).where(Flag.kind == "dose_on_held_day")).all()


@pytest.mark.usefixtures("held")
def test_tablets_taken_on_a_held_day_are_recorded_as_taken_with_the_prescription_in_force(
        app, session, world, clock):
    log = _took_anyway(session, app, world, clock)
    assert (log.outcome, log.course_day, log.dose_mg, log.tablets) == ("taken", 3, 0, 0)
    [flag] = _flags(session)
    assert flag.participant_id == world.participants["pa"].id
    assert "held (0 mg)" in flag.detail and "proposed protocol deviation" in flag.detail


@pytest.mark.usefixtures("held")
def test_the_staff_flag_is_raised_once_per_day_whatever_the_channel(app, session, world, clock):
    first = _took_anyway(session, app, world, clock, key="page-tap-1")
    # An SMS "1" for the same day: already recorded, no second record and no second flag.
    again = _took_anyway(session, app, world, clock, key="SM-sms-reply-1", source="sms")
    assert again.id == first.id
    assert len(_flags(session)) == 1


@pytest.mark.usefixtures("held")
def test_a_held_day_cannot_be_recorded_as_not_taken(app, session, world, clock):
    with pytest.raises(DoseLogError) as refused:
        dosing.log_dose(session, app.extensions["diary.study"], participant=world.participants["pa"],
                        course_id=world.courses["pa"].id, day=3, outcome="not_taken", reason="forgot",
                        client_key="skip-held", source="participant", now=clock.now)
    assert refused.value.code == "held"


@pytest.mark.usefixtures("held")
def test_the_deviation_scan_proposes_it_once(app, session, world, clock):
    _took_anyway(session, app, world, clock)
    rcfg = app.extensions["diary.records"]
    cfg = app.extensions["diary.study"]
    new = deviations.scan(session, cfg, rcfg, world.participants["pa"], clock.now)
    session.commit()
    assert [d.finding_key for d in new] == [f"held_dose:{world.courses['pa'].id}:3"]
    assert deviations.scan(session, cfg, rcfg, world.participants["pa"], clock.now) == []
    assert session.exec(select(ProtocolDeviation).where(ProtocolDeviation.status == "proposed")).one()


@pytest.mark.usefixtures("held")
def test_the_held_card_says_not_to_take_them_and_offers_a_discreet_took_them_anyway(client, auth, world):
    auth.participant("pa")
    page = client.get("/").get_data(as_text=True)
    card = _card(page, world, 3)
    assert "Do not take your study tablets (hetrombopag) today." in card
    assert "I took it</button>" not in card and "I did not take it" not in card
    assert '<details class="earlier">' in card and "<summary>I took them anyway</summary>" in card


@pytest.mark.usefixtures("held")
def test_the_participant_records_it_from_the_held_card_and_is_told_the_team_will_see_it(
        client, auth, world, session):
    auth.participant("pa")
    r = post(client, day_url(world, "pa", 3, "taken"), csrf(client), taken_on="2026-12-01", taken_time="08:30")
    assert r.status_code == 303
    [log] = logs(session)
    assert (log.outcome, log.dose_mg) == ("taken", 0)
    card = _card(client.get("/").get_data(as_text=True), world, 3)
    assert "You told us you took study tablets at 08:30" in card
    assert "Do not take any more study tablets (hetrombopag) on this day." in card
    assert "I took them anyway" not in card


@pytest.mark.usefixtures("held", "english")
def test_staff_see_it_on_the_participant_page_the_timeline_and_the_flag_queue(
        client, auth, app, session, world, clock):
    _took_anyway(session, app, world, clock)
    auth.staff("nurse_a")
    html = client.get(f"/staff/participants/{world.participants['pa'].id}").get_data(as_text=True)
    assert "Tablets taken on this held day" in html  # the course grid
    assert "on a held day (0 mg prescribed)" in html  # the timeline
    assert "Dose taken on a held day" in client.get("/staff/flags").get_data(as_text=True)
