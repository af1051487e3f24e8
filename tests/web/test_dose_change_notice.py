"""Issue 10, finding 8: a signed dose change never arrives silently.

The participant's next page view says what changed and from when, until they tap "I understand";
the tap is stored once (who, when, audited) however many times or phones; staff see it; and a
change can no longer take effect on a day already past.
"""

import threading
from datetime import timedelta

import pytest
from sqlmodel import select

from diary.models import AuditEvent, DoseChangeAck, DoseDecision
from diary.services import decisions
from tests.conftest import PASSWORD
from tests.web.staff_helpers import english  # noqa: F401 - fixture

# The world's course: day 1 is 29 November, so 1 December (the clock's today) is day 3.
CHANGE = "Your dose has changed: now 3 tablets = 7.5 mg hetrombopag from Wed, Dec 2."
HOLD = "Your study tablets (hetrombopag) are paused from Wed, Dec 2."


def sign(app, session, world, clock, *, participant="pa", day=4, mg=7.5, current=5.0, now=None):
    cfg = app.extensions["diary.study"]
    decision = decisions.sign_decision(session, cfg, course=world.courses[participant],
                                       signer=world.staff["investigator_a"], effective_day=day, dose_mg=mg,
                                       current_dose_mg=current, now=now or clock.now)
    session.commit()
    return decision


def understood(client, auth, decision_id, **headers):
    return client.post(f"/dose-changes/{decision_id}/understood", data={"csrf_token": auth.csrf("/")},
                       headers=headers)


def test_a_signed_change_is_on_the_next_page_view_until_understood(app, client, auth, world, session, clock):
    decision = sign(app, session, world, clock)
    auth.participant("pa")

    assert CHANGE in client.get("/").get_data(as_text=True)
    assert CHANGE in client.get("/").get_data(as_text=True)  # not a one-time message: it stays
    r = understood(client, auth, decision.id)

    assert r.status_code == 303 and r.headers["Location"].endswith("/")
    assert CHANGE not in client.get("/").get_data(as_text=True)


def test_the_day_pages_carry_the_notice_too(app, client, auth, world, session, clock):
    sign(app, session, world, clock)
    auth.participant("pa")

    html = client.get(f"/courses/{world.courses['pa'].id}/days/4").get_data(as_text=True)

    assert CHANGE in html and "I understand" in html


def test_a_hold_says_plainly_that_the_study_tablets_are_paused(app, client, auth, world, session, clock):
    sign(app, session, world, clock, mg=0)
    auth.participant("pa")

    assert HOLD in client.get("/").get_data(as_text=True)


def test_the_notice_is_in_natural_chinese(app, client, auth, world, session, clock):
    world.participants["pa"].language = "zh"
    session.add(world.participants["pa"])
    sign(app, session, world, clock)
    auth.participant("pa")

    html = client.get("/").get_data(as_text=True)

    assert "您的剂量已调整：从12月2日周三起，每天服用海曲泊帕 7.5 毫克（3 片）。" in html
    assert "我知道了" in html


def test_an_htmx_tap_replaces_the_notice_with_a_thank_you(app, client, auth, world, session, clock):
    decision = sign(app, session, world, clock)
    auth.participant("pa")

    r = understood(client, auth, decision.id, **{"HX-Request": "true"})

    assert r.status_code == 200 and "Thank you" in r.get_data(as_text=True)
    assert CHANGE not in client.get("/").get_data(as_text=True)


def test_the_acknowledgement_is_stored_with_who_and_when_and_audited(app, client, auth, world, session, clock):
    decision = sign(app, session, world, clock)
    auth.participant("pa")
    clock.advance(minutes=7)

    understood(client, auth, decision.id)

    ack = session.exec(select(DoseChangeAck)).one()
    assert (ack.decision_id, ack.participant_id, ack.acknowledged_at) == (
        decision.id, world.participants["pa"].id, clock.now)
    event = session.exec(select(AuditEvent).where(AuditEvent.action == "dose_change_acknowledged")).one()
    assert event.actor == f"participant:{world.participants['pa'].id}" and event.entity_id == str(ack.id)


def test_ten_phones_tapping_at_once_store_one_acknowledgement(app, client, auth, world, session, clock):
    decision = sign(app, session, world, clock)
    auth.participant("pa")
    cookie = client.get_cookie("session")
    token = auth.csrf("/")
    phones = []
    for _ in range(10):
        phone = app.test_client()
        phone.set_cookie(cookie.key, cookie.value, domain=cookie.domain or "localhost")
        phones.append(phone)
    barrier = threading.Barrier(len(phones))
    answers: list = [None] * len(phones)

    def tap(n: int) -> None:
        barrier.wait()
        answers[n] = phones[n].post(f"/dose-changes/{decision.id}/understood", data={"csrf_token": token}).status_code

    threads = [threading.Thread(target=tap, args=(n,)) for n in range(len(phones))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)

    assert answers == [303] * len(phones)
    session.expire_all()
    assert len(session.exec(select(DoseChangeAck)).all()) == 1
    assert len(session.exec(select(AuditEvent).where(AuditEvent.action == "dose_change_acknowledged")).all()) == 1


@pytest.mark.any_db
def test_a_participant_cannot_acknowledge_another_participants_change(app, client, auth, world, session, clock):
    theirs = sign(app, session, world, clock, participant="pb")
    auth.participant("pa")

    assert understood(client, auth, theirs.id).status_code == 404
    assert understood(client, auth, theirs.id + 999).status_code == 404
    assert session.exec(select(DoseChangeAck)).all() == []


@pytest.mark.any_db
def test_only_the_signed_in_participant_can_tap_it(app, client, auth, world, session, clock):
    decision = sign(app, session, world, clock)
    token = auth.csrf("/login")

    anonymous = client.post(f"/dose-changes/{decision.id}/understood", data={"csrf_token": token})
    auth.staff("nurse_a")
    staff = client.post(f"/dose-changes/{decision.id}/understood", data={"csrf_token": auth.csrf("/staff/")})

    assert anonymous.status_code == 302 and "/login" in anonymous.headers["Location"]
    assert staff.status_code == 403
    assert session.exec(select(DoseChangeAck)).all() == []


@pytest.mark.any_db
def test_the_tap_needs_the_csrf_token(app, client, auth, world, session, clock):
    decision = sign(app, session, world, clock)
    auth.participant("pa")

    r = client.post(f"/dose-changes/{decision.id}/understood", data={})

    assert r.status_code == 400 and session.exec(select(DoseChangeAck)).all() == []


def test_a_change_overtaken_before_it_took_effect_is_not_announced(app, client, auth, world, session, clock):
    sign(app, session, world, clock, day=5, mg=7.5)
    sign(app, session, world, clock, day=4, mg=0)  # a later signature, from an earlier day: the hold wins
    auth.participant("pa")

    html = client.get("/").get_data(as_text=True)

    assert "7.5 mg" not in html and HOLD in html


@pytest.mark.usefixtures("english")
def test_staff_see_whether_and_when_each_change_was_acknowledged(app, client, auth, world, session, clock):
    first = sign(app, session, world, clock, day=3, mg=7.5)
    sign(app, session, world, clock, day=5, mg=0, current=7.5)
    decisions.acknowledge_change(session, participant=world.participants["pa"], decision_id=first.id,
                                 now=clock.now + timedelta(minutes=30))
    session.commit()
    auth.staff("nurse_a")

    html = client.get(f"/staff/participants/{world.participants['pa'].id}").get_data(as_text=True)

    assert "Acknowledged by the participant at 2026-12-01 09:30" in html
    assert html.count("Not yet acknowledged by the participant") == 1
    assert "The participant acknowledged the dose change of cycle 1 (7.5 mg from day 3)" in html  # the timeline


# --- the effective day ----------------------------------------------------------------------------


def test_a_change_effective_on_a_day_already_past_is_refused(app, world, session, clock):
    with pytest.raises(decisions.DecisionError) as refused:
        sign(app, session, world, clock, day=2, mg=0)  # yesterday: it would turn a logged day into a held one

    assert refused.value.code == "effective_day_past"
    session.rollback()
    assert session.exec(select(DoseDecision)).all() == []


def test_today_is_the_earliest_day_a_change_may_take_effect(app, world, session, clock):
    # 23:59 in Shanghai is still 1 December there: day 3 is today, not past.
    late = clock.now.replace(hour=15, minute=59)
    assert sign(app, session, world, clock, day=3, mg=7.5, now=late).effective_day == 3


def test_the_staff_form_explains_the_refusal_in_the_readers_language(app, client, auth, world, session, clock):
    from diary.services import labs

    lab = labs.record_lab(session, app.extensions["diary.study"], course=world.courses["pa"], course_day=1,
                          drawn_on=clock.now.date() - timedelta(days=2), plt=40,
                          staff_id=world.staff["nurse_a"].id, now=clock.now)
    session.commit()
    auth.staff("investigator_a")  # no Accept-Language: the staff pages are in Chinese

    r = client.post(f"/staff/courses/{world.courses['pa'].id}/decision", data={
        "csrf_token": auth.csrf("/staff/"), "lab_id": str(lab.id), "effective_day": "2", "dose_mg": "7.5",
        "override_reason": "", "password": PASSWORD})

    assert r.status_code == 400
    assert "该日已过：剂量调整最早只能从今天开始生效。" in r.get_data(as_text=True)
    assert session.exec(select(DoseDecision)).all() == []
