"""Two nurses acknowledging one flag at the same moment: one wins, one is told, one audit event."""

import threading

from sqlmodel import Session, select

from diary.models import AuditEvent, Flag
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
