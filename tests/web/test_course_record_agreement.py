"""Issue 9: the today page, the scheduler, the adherence grid and its headline, and the export agree
on every day's status, over random course histories (decisions, corrected logs and undos, corrected
blood counts, review pauses opened and closed, SMS opt-outs)."""

from __future__ import annotations

import csv
import io
import zipfile
from datetime import time, timedelta

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlmodel import select

from diary import study
from diary.models import DoseDecision, Flag, LabResult, Message, ReviewPause
from diary.scheduling import planning
from diary.scheduling.context import Jobs
from diary.services import adherence, day_cards, dosing, enrolment
from diary.services.export import build_export
from diary.study import DoseStatus

SHANGHAI = "Asia/Shanghai"
counter = iter(range(10_000))

log_event = st.tuples(st.integers(1, 14), st.sampled_from(["taken", "not_taken", "retracted"]))
histories = st.fixed_dictionaries({
    "hours": st.integers(0, 24 * 17),  # `now`, counted from local midnight of day 1
    "decisions": st.lists(st.tuples(st.integers(1, 14), st.sampled_from([0, 2.5, 5, 7.5])), max_size=3),
    "logs": st.lists(log_event, max_size=20),
    "labs": st.lists(st.tuples(st.integers(5, 15), st.integers(5, 300), st.booleans()), max_size=4),
    # (hours after day 1 began the pause opened, hours it stayed open or None)
    "pauses": st.lists(st.tuples(st.integers(0, 24 * 16), st.one_of(st.none(), st.integers(1, 24 * 5))),
                       max_size=2),
    "opted_out": st.booleans(),
})


def _build(app, session, world, clock, h):
    cfg = app.extensions["diary.study"]
    cipher = app.extensions["diary.cipher"]
    staff = world.staff["nurse_a"].id
    n = next(counter)
    day1 = clock.now.date() + timedelta(days=40 + 20 * n)  # each example its own weeks
    start = study.local_instant(day1, time(0, 0), SHANGHAI)
    now = start + timedelta(hours=h["hours"], minutes=7)
    p = enrolment.enroll(session, cipher, site_id=world.sites["A"].id, study_number=f"H{n:04d}", cohort="primary",
                         phone=f"+86139{n:08d}", staff_id=staff, now=start - timedelta(days=2), language="en")
    p.sms_opt_in = not h["opted_out"]
    course = enrolment.open_course(session, cfg, participant=p, adc_drug="other",
                                   infusion_date=day1 - timedelta(days=1), staff_id=staff,
                                   now=start - timedelta(days=1))
    for effective_day, mg in h["decisions"]:
        session.add(DoseDecision(course_id=course.id, effective_day=effective_day, dose_mg=mg, action="x",
                                 decided_by=world.staff["investigator_a"].id, signed_at=start))
    for i, (day, outcome) in enumerate(h["logs"]):
        try:  # staff entries, each superseding the day's head (undos included)
            dosing.log_dose(session, cfg, participant=p, course_id=course.id, day=day, outcome=outcome,
                            client_key=f"h{n}-{i}", source="staff", staff_id=staff, correction_reason="paper",
                            now=now, reason="forgot" if outcome == "not_taken" else None,
                            taken_at=study.local_instant(day1 + timedelta(days=day - 1), time(8, 0), SHANGHAI))
        except dosing.DoseLogError:
            pass  # a time after `now`: refused, nothing written
    for day, plt, corrected in h["labs"]:
        lab = LabResult(course_id=course.id, course_day=day, drawn_on=day1, plt=plt, entered_by=staff, entered_at=now)
        session.add(lab)
        session.flush()
        if corrected:  # a correction moves the count to another day: only the current row counts
            session.add(LabResult(course_id=course.id, course_day=min(day + 3, 14), drawn_on=day1, plt=plt,
                                  entered_by=staff, entered_at=now, supersedes_id=lab.id))
    has_open = False
    # Two pauses may open at the same hour, one of them still open (None): sort without comparing None.
    for opened_h, open_hours in sorted(h["pauses"], key=lambda p: (p[0], p[1] is None, p[1] or 0)):
        opened = start + timedelta(hours=opened_h)
        closed = opened + timedelta(hours=open_hours) if open_hours is not None else None
        if closed is not None and closed > now:
            closed = None  # not closed yet at `now`
        if opened > now or (closed is None and has_open):
            continue  # the database allows one open pause per course
        has_open = has_open or closed is None
        session.add(ReviewPause(course_id=course.id, participant_id=p.id, site_id=p.site_id, cause="danger_symptom",
                                opened_at=opened, closed_at=closed))
    session.commit()
    return p, course, now


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                 HealthCheck.too_slow])
@given(h=histories)
def test_every_consumer_reads_the_same_status_for_every_day(app, session, world, clock, h):
    cfg = app.extensions["diary.study"]
    p, course, now = _build(app, session, world, clock, h)

    # The today page (and its calendar): the participant's view.
    view = day_cards.today_view(session, p, cfg, now)
    grid = adherence.build_grid(session, cfg, now, None)
    [row] = [r for r in grid.rows if r.course_id == course.id]
    statuses = row.cells
    if view.card is not None:
        assert view.card.plan.status.value == statuses[view.card.plan.day - 1]
    for missed in view.missed_days:
        assert statuses[missed.day - 1] == "missed"

    # The headline: this site's figures are the sum of the rows shown.
    shown = [r for r in grid.rows if r.site_code == "A"]
    assert grid.by_site["A"].taken == sum(r.counts.taken for r in shown)
    assert grid.by_site["A"].counted == sum(r.counts.counted for r in shown)
    assert row.counts.taken == statuses.count("taken") and row.counts.missed == statuses.count("missed")

    # The scheduler: a missed-dose flag for exactly the missed days (once their cutoff passed),
    # and a dose reminder only for a day that is due.
    with app.app_context():
        jobs = Jobs.from_app(app)
        running = planning.load_running(session, jobs, now)
        planning.raise_dose_flags(session, jobs, now, running)
        planning.plan_reminders(session, jobs, now, running)
    session.commit()
    flagged = {int(key.rsplit(":", 1)[1]) for key in session.exec(
        select(Flag.key).where(Flag.key.like(f"missed:{course.id}:%"))).all()}
    if any(r.record.course_id == course.id for r in running):
        assert flagged == {i + 1 for i, s in enumerate(statuses) if s == "missed"}
    for day in session.exec(select(Message.course_day).where(Message.course_id == course.id,
                                                            Message.kind.in_(["dose", "followup"]))).all():
        assert statuses[day - 1] == DoseStatus.DUE.value
        assert not h["opted_out"]

    # The export: the derived dose days.
    data = build_export(session, sites=None, actor_id=world.staff["admin"].id, now=now, cfg=cfg)
    session.rollback()
    rows = list(csv.DictReader(io.StringIO(zipfile.ZipFile(io.BytesIO(data)).read("dose_days.csv").decode())))
    exported = [r["status"] for r in rows if r["course_id"] == str(course.id)]
    assert exported == statuses
