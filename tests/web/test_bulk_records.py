"""The course-record loader's three forms read the same facts: the one-statement form of a page,
the bulk form by sub-select (the tick, a filtered grid) and the whole-study bulk form (the full
grid), including corrected logs and counts, retractions, acknowledged decisions, symptom reports,
review pauses, and a voided course whose facts must not leak into another course."""

from __future__ import annotations

from dataclasses import replace
from datetime import time, timedelta

from diary import study
from diary.models import (
    Course,
    DoseChangeAck,
    DoseDecision,
    LabResult,
    Participant,
    ReviewPause,
    SymptomReport,
    course_not_voided,
)
from diary.services import dosing
from diary.services.course_records import load_record, load_records


def _history(app, session, world, clock):
    cfg = app.extensions["diary.study"]
    staff = world.staff["nurse_a"].id
    pa, pb = world.participants["pa"], world.participants["pb"]
    course_a, course_b = world.courses["pa"], world.courses["pb"]
    for n, (p, course, day, outcome) in enumerate([
            (pa, course_a, 1, "taken"), (pa, course_a, 1, "not_taken"),  # a correction
            (pa, course_a, 2, "taken"), (pa, course_a, 2, "retracted"),  # an undo: day 2 has no log
            (pa, course_a, 3, "taken"), (pb, course_b, 2, "not_taken"), (pb, course_b, 1, "taken")]):
        dosing.log_dose(session, cfg, participant=p, course_id=course.id, day=day, outcome=outcome,
                        client_key=f"bulk{n}", source="staff", staff_id=staff, correction_reason="paper",
                        now=clock.now, reason="forgot" if outcome == "not_taken" else None,
                        taken_at=study.local_instant(course.start_date + timedelta(days=day - 1), time(8, 0),
                                                     p.timezone))
    first = LabResult(course_id=course_a.id, course_day=1, drawn_on=course_a.start_date, plt=88.5, entered_by=staff,
                      entered_at=clock.now)
    session.add(first)
    session.flush()
    session.add_all([
        LabResult(course_id=course_a.id, course_day=2, drawn_on=course_a.start_date, plt=91.25, entered_by=staff,
                  entered_at=clock.now, supersedes_id=first.id),
        LabResult(course_id=course_b.id, course_day=0, drawn_on=course_b.start_date, plt=0.1 + 0.2, entered_by=staff,
                  entered_at=clock.now),
    ])
    for course, day, mg in ((course_a, 2, 7.5), (course_a, 3, 2.5), (course_b, 2, 0.0)):
        decision = DoseDecision(course_id=course.id, effective_day=day, dose_mg=mg, action="x",
                                decided_by=world.staff["investigator_a"].id, signed_at=clock.now)
        session.add(decision)
        session.flush()
    session.add(DoseChangeAck(decision_id=decision.id, participant_id=pb.id, acknowledged_at=clock.now))
    session.add(SymptomReport(participant_id=pa.id, course_id=course_a.id, noticed_at=clock.now, danger=True,
                              source="participant", client_key="bulk-s", received_at=clock.now))
    session.add(ReviewPause(course_id=course_a.id, participant_id=pa.id, site_id=pa.site_id, cause="danger_symptom",
                            opened_at=clock.now - timedelta(hours=5), closed_at=clock.now - timedelta(hours=1)))
    # A course entered in error, with facts of its own: none of them may reach another record.
    voided = Course(participant_id=pb.id, cycle_number=9, adc_drug="other", infusion_date=course_b.infusion_date,
                    start_date=course_b.start_date, starting_dose_mg=5.0, created_by=staff, created_at=clock.now,
                    voided_at=clock.now, voided_by=staff, void_reason="entered twice")
    session.add(voided)
    session.flush()
    session.add(LabResult(course_id=voided.id, course_day=3, drawn_on=voided.start_date, plt=12.0, entered_by=staff,
                          entered_at=clock.now))
    session.add(DoseDecision(course_id=voided.id, effective_day=1, dose_mg=0.0, action="hold",
                             decided_by=world.staff["investigator_a"].id, signed_at=clock.now))
    session.commit()
    return course_a, course_b, voided


def test_every_form_of_the_loader_reads_the_same_records(app, session, world, clock):
    course_a, course_b, voided = _history(app, session, world, clock)
    whole = load_records(session, course_not_voided(), log_details=False, whole_study=True)
    listed = load_records(session, course_not_voided(), log_details=False)
    assert set(whole) == {course_a.id, course_b.id}
    assert whole == listed
    for course_id, record in whole.items():
        # The one-statement form has the logs themselves too; the bulk forms only their outcomes.
        assert replace(load_record(session, course_id), logs=None, heads=None) == record
    a, b = whole[course_a.id], whole[course_b.id]
    assert a.outcomes == {1: "not_taken", 3: "taken"}
    assert [(lab.day, lab.plt) for lab in a.labs] == [(2, 91.25)]
    assert [lab.plt for lab in b.labs] == [0.1 + 0.2]
    assert a.decisions == ((2, 7.5), (3, 2.5)) and b.signed[0].acknowledged_at is not None
    assert len(a.symptoms) == 1 and len(a.pauses) == 1 and not b.symptoms and not b.pauses


def test_a_filtered_bulk_load_reads_only_its_courses(app, session, world, clock):
    course_a, course_b, voided = _history(app, session, world, clock)
    site_a = load_records(session, course_not_voided(), Participant.site_id == world.sites["A"].id,
                          log_details=False)
    assert set(site_a) == {course_a.id}
    everything = load_records(session, log_details=False, whole_study=True)
    assert set(everything) == {course_a.id, course_b.id, voided.id}
    assert everything[voided.id] == load_records(session, Course.id == voided.id, log_details=False)[voided.id]
    assert [lab.plt for lab in everything[voided.id].labs] == [12.0]
