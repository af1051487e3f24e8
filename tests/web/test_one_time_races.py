"""One-time staff actions done twice at the same moment (two nurses, two browser tabs): one wins,
the other is told, and there is one audit event."""

import threading

from sqlmodel import Session, select

from diary.models import AuditEvent, Course, Flag, Participant
from diary.services import courses, enrolment
from diary.services.flags import FlagError, acknowledge, raise_flag


def test_two_nurses_acknowledging_one_flag_at_once_record_one_acknowledgement(app, session, world, clock):
    pa = world.participants["pa"]
    flag = raise_flag(session, key="missed:race", kind="missed_dose", site_id=pa.site_id, participant_id=pa.id,
                      detail="Day 2 not logged", now=clock.now)
    session.commit()
    engine = app.extensions["diary.engine"]
    nurses = [world.staff["nurse_a"].id, world.staff["admin"].id]
    barrier = threading.Barrier(len(nurses))
    outcomes: list = [None] * len(nurses)

    def ack(n: int) -> None:
        with Session(engine, expire_on_commit=False) as s:
            mine = s.get(Flag, flag.id)  # both read it open
            barrier.wait()
            try:
                acknowledge(s, flag=mine, staff_id=nurses[n], note=f"called her ({n})", now=clock.now)
                s.commit()
                outcomes[n] = "acknowledged"
            except FlagError as exc:
                s.rollback()
                outcomes[n] = exc.code

    threads = [threading.Thread(target=ack, args=(n,)) for n in range(len(nurses))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)

    assert sorted(outcomes) == ["acknowledged", "already_acknowledged"]
    session.expire_all()
    stored = session.get(Flag, flag.id)
    winner = outcomes.index("acknowledged")
    assert (stored.acknowledged_by, stored.ack_note) == (nurses[winner], f"called her ({winner})")
    events = session.exec(select(AuditEvent).where(AuditEvent.action == "flag_acknowledged",
                                                   AuditEvent.entity_id == flag.id)).all()
    assert len(events) == 1


def _twice_at_once(engine, action) -> list:
    """Run `action(session, n)` in two threads released together, each with its own session;
    'done' when it committed, else the refusal's code."""
    barrier = threading.Barrier(2)
    outcomes: list = [None, None]

    def run(n: int) -> None:
        with Session(engine, expire_on_commit=False) as s:
            try:
                action(s, n, barrier)
                s.commit()
                outcomes[n] = "done"
            except (courses.CourseError, enrolment.EnrolmentError) as exc:
                s.rollback()
                outcomes[n] = exc.code

    threads = [threading.Thread(target=run, args=(n,)) for n in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    return outcomes


def _events(session, action: str) -> int:
    session.expire_all()
    return len(session.exec(select(AuditEvent).where(AuditEvent.action == action)).all())


def test_a_course_voided_twice_at_once_is_voided_once(app, session, world, clock):
    investigator = world.staff["investigator_a"]

    def void(s, n, barrier):
        course = s.get(Course, world.courses["pa"].id)
        signer = s.merge(investigator)
        barrier.wait()
        courses.void_course(s, course=course, reason=f"entered in error ({n})", signer=signer, now=clock.now)

    outcomes = _twice_at_once(app.extensions["diary.engine"], void)
    assert sorted(outcomes) == ["already_voided", "done"]
    assert _events(session, "course_voided") == 1


def test_a_participation_ended_twice_at_once_is_ended_once(app, session, world, clock):
    version = world.participants["pa"].auth_version

    def end(s, n, barrier):
        participant = s.get(Participant, world.participants["pa"].id)
        barrier.wait()
        enrolment.end_participation(s, participant=participant, status="withdrawn", reason=f"asked to ({n})",
                                    staff_id=world.staff["nurse_a"].id, now=clock.now)

    outcomes = _twice_at_once(app.extensions["diary.engine"], end)
    assert sorted(outcomes) == ["already_ended", "done"]
    assert _events(session, "participant_withdrawn") == 1
    session.expire_all()
    assert session.get(Participant, world.participants["pa"].id).auth_version == version + 1  # bumped once
