"""Clinical-review pause (issue 9, problem 1): a danger report or a critical PLT pauses dosing
everywhere at once — today page, day cards, reminders, missed-dose flags — until staff close it."""

from datetime import UTC, datetime, timedelta

import pytest
from sqlmodel import select

from diary.models import AuditEvent, DoseLog, Flag, LabResult, ReviewPause
from diary.services import decisions, dosing, labs, symptoms
from diary.services.flags import acknowledge
from tests.web.staff_helpers import english  # noqa: F401 - fixture

pytestmark = pytest.mark.usefixtures("english")

NEXT_MORNING = datetime(2026, 12, 2, 0, 5, tzinfo=UTC)  # 08:05 in Shanghai, course day 4


def _danger(app, session, world, clock, key="k-danger-1"):
    cfg = app.extensions["diary.study"]
    report = symptoms.report_symptoms(
        session, cfg, participant=world.participants["pa"], symptoms=[{"key": "black_or_bloody_stool",
                                                                        "severity": "moderate"}],
        noticed_at=clock.now, client_key=key, source="participant", now=clock.now,
        course_id=world.courses["pa"].id)
    session.commit()
    return report


def _pause(session, world) -> ReviewPause | None:
    session.expire_all()
    return session.exec(select(ReviewPause).where(ReviewPause.course_id == world.courses["pa"].id)).first()


def _today(client, auth) -> str:
    auth.participant("pa")
    return client.get("/").get_data(as_text=True)


def _reminder_keys(sms) -> set[str]:
    return {m.dedupe_key for m in sms.outbox() if m.kind in ("dose", "followup")}


def test_a_danger_report_tells_the_participant_to_wait_for_the_call_and_shows_the_team_phones(
        app, client, auth, session, world, clock):
    _danger(app, session, world, clock)
    html = _today(client, auth)
    assert "Do not take your study tablets (hetrombopag) until the study team has called you." in html
    assert world.sites["A"].phone in html and world.sites["A"].on_call_phone in html
    assert "I took it</button>" not in html and "To take" not in html
    assert "any medicine" not in html


def test_a_danger_report_stops_the_next_mornings_reminder(app, session, world, clock, sms):
    _danger(app, session, world, clock)
    sms.tick(NEXT_MORNING)
    assert f"dose:{world.courses['pa'].id}:4" not in _reminder_keys(sms)


def test_paused_days_are_neither_due_nor_missed(app, session, world, clock, sms):
    _danger(app, session, world, clock)
    sms.tick(NEXT_MORNING + timedelta(days=2))  # day 3's and day 4's cutoffs have passed
    session.expire_all()
    missed = {f.key for f in session.exec(select(Flag).where(Flag.kind == "missed_dose")).all()}
    cid = world.courses["pa"].id
    assert f"missed:{cid}:1" in missed  # before the pause: still missed
    assert f"missed:{cid}:3" not in missed and f"missed:{cid}:4" not in missed


def test_acknowledging_the_danger_flag_does_not_close_the_pause(app, client, auth, session, world, clock):
    _danger(app, session, world, clock)
    flag = session.exec(select(Flag).where(Flag.kind == "danger_symptom")).one()
    acknowledge(session, flag=flag, staff_id=world.staff["nurse_a"].id, note="seen", now=clock.now)
    session.commit()
    assert _pause(session, world).closed_at is None
    assert "until the study team has called you" in _today(client, auth)


def test_staff_close_the_pause_with_a_note_and_the_dose_and_reminders_come_back(
        app, client, auth, session, world, clock, sms):
    _danger(app, session, world, clock)
    pause = _pause(session, world)
    auth.staff("nurse_a")
    flags_page = client.get("/staff/flags").get_data(as_text=True)
    assert f"/staff/pauses/{pause.id}/close" in flags_page
    r = client.post(f"/staff/pauses/{pause.id}/close", data={"csrf_token": auth.csrf("/staff/"),
                                                             "note": "Called her: stool dark from iron, continue"})
    assert r.status_code == 302
    pause = _pause(session, world)
    assert pause.close_kind == "continue" and pause.closed_by == world.staff["nurse_a"].id
    event = session.exec(select(AuditEvent).where(AuditEvent.action == "review_pause_closed")).one()
    assert event.reason.startswith("Called her")
    html = _today(client, auth)
    assert "I took it</button>" in html and "until the study team has called you" not in html
    sms.tick(NEXT_MORNING)
    assert f"dose:{world.courses['pa'].id}:4" in _reminder_keys(sms)


def test_closing_needs_a_note_and_changes_nothing_without_one(app, client, auth, session, world, clock):
    _danger(app, session, world, clock)
    pause = _pause(session, world)
    auth.staff("nurse_a")
    client.post(f"/staff/pauses/{pause.id}/close", data={"csrf_token": auth.csrf("/staff/"), "note": "  "})
    assert _pause(session, world).closed_at is None


def test_another_sites_nurse_cannot_close_the_pause(app, client, auth, session, world, clock):
    _danger(app, session, world, clock)
    pause = _pause(session, world)
    auth.staff("nurse_b")
    r = client.post(f"/staff/pauses/{pause.id}/close", data={"csrf_token": auth.csrf("/staff/"), "note": "x"})
    assert r.status_code in (403, 404)
    assert _pause(session, world).closed_at is None


def test_a_signed_dose_decision_closes_the_pause(app, session, world, clock):
    cfg = app.extensions["diary.study"]
    _danger(app, session, world, clock)
    course = world.courses["pa"]
    signed = decisions.sign_decision(session, cfg, course=course, signer=world.staff["investigator_a"],
                                     effective_day=3, dose_mg=0, current_dose_mg=5, now=clock.now)
    session.commit()
    pause = _pause(session, world)
    assert pause.closed_at is not None and pause.close_kind == "decision" and pause.decision_id == signed.id


def test_a_second_danger_report_joins_the_open_pause(app, session, world, clock):
    _danger(app, session, world, clock)
    _danger(app, session, world, clock, key="k-danger-2")
    session.expire_all()
    assert len(session.exec(select(ReviewPause)).all()) == 1


def test_the_participant_can_still_record_a_dose_they_took_and_staff_see_it(
        app, client, auth, session, world, clock):
    cfg = app.extensions["diary.study"]
    _danger(app, session, world, clock)
    assert "I already took it: enter the time" in _today(client, auth)
    dosing.log_dose(session, cfg, participant=world.participants["pa"], course_id=world.courses["pa"].id, day=3,
                    outcome="taken", client_key="took-it-anyway", source="participant", now=clock.now,
                    taken_at=clock.now - timedelta(hours=1))
    session.commit()
    auth.staff("nurse_a")
    html = client.get(f"/staff/participants/{world.participants['pa'].id}").get_data(as_text=True)
    assert "Review pause open since" in html
    log = session.exec(select(DoseLog).where(DoseLog.client_key == "took-it-anyway")).one()
    assert log.outcome == "taken"
    # Issue 10, item 10: shown to staff and proposed as a protocol deviation.
    flag = session.exec(select(Flag).where(Flag.key == f"dose_in_pause:{log.id}")).one()
    assert "proposed protocol deviation" in flag.detail
    assert "Dose taken during a review pause" in client.get("/staff/flags").get_data(as_text=True)


def _lab(app, session, world, clock, plt):
    cfg = app.extensions["diary.study"]
    lab = labs.record_lab(session, cfg, course=world.courses["pa"], course_day=3, drawn_on=clock.now.date(),
                          plt=plt, staff_id=world.staff["nurse_a"].id, now=clock.now)
    session.commit()
    return lab


def test_a_critical_platelet_count_opens_a_pause(app, session, world, clock):
    _lab(app, session, world, clock, 15)
    assert _pause(session, world).cause == "critical_plt"


def test_a_normal_platelet_count_opens_no_pause(app, session, world, clock):
    _lab(app, session, world, clock, 80)
    assert _pause(session, world) is None


def test_correcting_a_count_to_a_critical_value_raises_the_urgent_flag_and_opens_a_pause(
        app, session, world, clock):
    """Issue 9, problem 5: correct_lab raised no urgent-PLT flag."""
    cfg = app.extensions["diary.study"]
    lab = _lab(app, session, world, clock, 150)
    corrected = labs.correct_lab(session, cfg, lab=lab, course_day=3, drawn_on=lab.drawn_on, plt=12,
                                 staff_id=world.staff["nurse_a"].id, reason="typo: 150 for 12", now=clock.now)
    session.commit()
    session.expire_all()
    assert session.exec(select(Flag).where(Flag.key == f"urgent_plt:{corrected.id}")).one().kind == "urgent_plt"
    assert _pause(session, world).cause == "critical_plt"
    assert session.get(LabResult, corrected.id).supersedes_id == lab.id


def test_no_followup_is_sent_while_the_pause_is_open(app, session, world, clock, sms):
    _danger(app, session, world, clock)
    sms.tick(NEXT_MORNING + timedelta(hours=3))  # past the follow-up time
    cid = world.courses["pa"].id
    assert not [m for m in sms.outbox() if m.kind in ("dose", "followup") and m.course_id == cid]
    # The other participant's reminders go on.
    assert [m for m in sms.outbox() if m.kind == "followup" and m.course_id == world.courses["pb"].id]


def test_paused_days_are_paused_in_the_grid_the_headline_and_the_export(app, client, auth, session, world, clock):
    """Paused days are neither taken nor missed: the grid shows them as paused, the headline does
    not count them, and the export says "paused" for the same days."""
    import csv
    import io
    import zipfile

    from diary.services import adherence

    _danger(app, session, world, clock)
    later = clock.now + timedelta(days=3)  # days 3–6 are covered by the open pause
    cfg = app.extensions["diary.study"]
    grid = adherence.build_grid(session, cfg, later, None)
    [row] = [r for r in grid.rows if r.course_id == world.courses["pa"].id]
    paused = [i + 1 for i, s in enumerate(row.cells) if s == "paused"]
    assert paused and 3 in paused
    assert row.counts.paused == len(paused)
    assert row.counts.counted == row.counts.taken + row.counts.not_taken + row.counts.missed  # paused not in it
    clock.now = later
    auth.staff("admin")
    r = client.post("/staff/export", data={"csrf_token": auth.csrf("/staff/export")})
    days = list(csv.DictReader(io.StringIO(zipfile.ZipFile(io.BytesIO(r.data)).read("dose_days.csv").decode())))
    exported = sorted(int(d["course_day"]) for d in days
                      if d["status"] == "paused" and int(d["course_id"]) == world.courses["pa"].id)
    assert exported == paused


def test_staff_close_the_pause_from_the_participant_page(app, client, auth, session, world, clock):
    _danger(app, session, world, clock)
    pause = _pause(session, world)
    auth.staff("nurse_a")
    page = client.get(f"/staff/participants/{world.participants['pa'].id}").get_data(as_text=True)
    assert f"/staff/pauses/{pause.id}/close" in page
    r = client.post(f"/staff/pauses/{pause.id}/close",
                    data={"csrf_token": auth.csrf("/staff/"), "note": "Called: nosebleed stopped, continue",
                          "next": f"/staff/participants/{world.participants['pa'].id}"})
    assert r.status_code == 302
    assert _pause(session, world).closed_at is not None
