"""A row written in a transaction's first savepoint is rolled back with the transaction: on SQLite
the savepoint used to start (and its release commit) a transaction of its own, so a dose log was
committed apart from its audit event (found by the backup test under write load, issue 14 item 7)."""

from sqlmodel import Session, func, select

from diary.models import DoseLog, Participant
from diary.services import dosing


def test_a_dose_log_rolled_back_with_its_transaction_leaves_nothing(app, world, clock):
    engine = app.extensions["diary.engine"]
    with Session(engine) as s:
        p = s.get(Participant, world.participants["pa"].id)
        dosing.log_dose(s, app.extensions["diary.study"], participant=p, course_id=world.courses["pa"].id, day=1,
                        outcome="taken", client_key="rolled-back", source="staff", now=clock.now,
                        taken_at=clock.now, staff_id=world.staff["nurse_a"].id, correction_reason="test")
        s.rollback()
    with Session(engine) as s:
        assert s.exec(select(func.count()).select_from(DoseLog)).one() == 0
