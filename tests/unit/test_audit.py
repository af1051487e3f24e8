"""The audit trail is a hash chain: any edit or deletion made behind the app's back is found."""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import delete, update
from sqlmodel import select

from diary import audit
from diary.models import AuditEvent, Participant
from tests.conftest import PIN, csrf_from


def _events(session) -> list[AuditEvent]:
    session.rollback()
    session.expire_all()
    return session.exec(select(AuditEvent).order_by(AuditEvent.id)).all()


def _behind_the_apps_back(app, statement) -> None:
    """SQL straight on a connection: no ORM session, so no append-only guard."""
    with app.extensions["diary.engine"].begin() as conn:
        conn.execute(statement)


def _same_chain(events: list[AuditEvent], event: AuditEvent) -> list[AuditEvent]:
    return [e for e in events if e.chain == event.chain]


def test_each_event_links_to_the_hash_of_the_one_before_in_its_chain(session, world):
    events = _events(session)
    assert len(events) > 3
    chains = {e.chain for e in events}
    assert {f"p:{p.id}" for p in world.participants.values()} <= chains
    for name in chains:
        chain = [e for e in events if e.chain == name]
        assert chain[0].prev_hash == audit.GENESIS
        assert [e.prev_hash for e in chain[1:]] == [e.hash for e in chain[:-1]]


def test_an_untouched_trail_verifies(session, world):
    report = audit.verify(session)
    assert report.ok
    assert report.checked == len(_events(session))


def test_an_edited_event_is_named_by_verify(app, session, world):
    target = _events(session)[2]
    _behind_the_apps_back(app, update(AuditEvent.__table__)
                          .where(AuditEvent.__table__.c.id == target.id).values(after={"cohort": "secondary"}))
    report = audit.verify(session)
    assert not report.ok
    assert report.first_broken_id == target.id


def test_an_edited_time_is_named_by_verify(app, session, world):
    target = _events(session)[1]
    _behind_the_apps_back(app, update(AuditEvent.__table__).where(AuditEvent.__table__.c.id == target.id)
                          .values(at=datetime(2026, 1, 1, tzinfo=UTC)))
    assert audit.verify(session).first_broken_id == target.id


def test_a_deleted_event_in_the_middle_is_found(app, session, world):
    pa = world.participants["pa"]
    audit.record(session, actor="system", action="checked", entity="Participant", entity_id=pa.id,
                 site_id=pa.site_id, participant_id=pa.id)
    session.commit()
    events = _events(session)
    chain = _same_chain(events, events[-1])
    assert len(chain) >= 3
    gone, after_gap = chain[-2], chain[-1]
    _behind_the_apps_back(app, delete(AuditEvent.__table__).where(AuditEvent.__table__.c.id == gone.id))
    report = audit.verify(session)
    assert report.first_broken_id == after_gap.id
    assert report.checked == len([e for e in events if e.id < after_gap.id]) - 1


def test_an_event_rewritten_with_a_matching_hash_still_breaks_the_next_link(app, session, world):
    events = _events(session)
    chain = _same_chain(events, events[-1])
    forged, successor = chain[-2], chain[-1]
    forged.after = {"forged": True}
    new_hash = audit._digest(forged)
    session.rollback()
    _behind_the_apps_back(app, update(AuditEvent.__table__).where(AuditEvent.__table__.c.id == forged.id)
                          .values(after={"forged": True}, hash=new_hash))
    assert audit.verify(session).first_broken_id == successor.id


def test_an_event_recorded_with_a_local_time_still_verifies(session, world):
    local = datetime(2026, 12, 1, 9, 0, 0, 123456, tzinfo=ZoneInfo("Asia/Shanghai"))
    audit.record(session, actor="system", action="checked", entity="Site", at=local)
    session.commit()
    assert audit.verify(session).ok


def test_verify_walks_the_chain_in_batches(session, world):
    assert audit.verify(session, batch=2).checked == len(_events(session))


def test_the_audit_verify_command_reports_an_intact_trail(runner, world):
    result = runner.invoke(args=["audit", "verify"])
    assert result.exit_code == 0, result.output
    assert "intact" in result.output


def test_the_audit_verify_command_fails_and_names_the_broken_event(app, runner, session, world):
    target = _events(session)[3]
    _behind_the_apps_back(app, update(AuditEvent.__table__)
                          .where(AuditEvent.__table__.c.id == target.id).values(actor="staff:999"))
    result = runner.invoke(args=["audit", "verify"])
    assert result.exit_code == 1
    assert f"event {target.id}" in result.output


def test_a_failed_sign_in_is_audited_with_who_and_what(client, session, world):
    token = csrf_from(client, "/login")
    client.post("/login", data={"csrf_token": token, "phone": world.phones["pa"], "pin": "0000"})
    event = _events(session)[-1]
    assert (event.action, event.actor, event.entity, event.after["what"]) == (
        "sign_in_failed", f"participant:{world.participants['pa'].id}", "Participant", "pin")
    assert world.phones["pa"] not in str(event.after)


@pytest.fixture
def audit_breaks_after_writing(monkeypatch):
    """The audit write succeeds and then the transaction fails, as on a crash before commit."""
    import diary.auth.services as services

    real = services.audit.record

    class Crash(RuntimeError):
        pass

    def record_then_crash(*args, **kwargs):
        real(*args, **kwargs)
        raise Crash("the process died before commit")

    monkeypatch.setattr(services.audit, "record", record_then_crash)
    return Crash


def test_a_failed_sign_in_and_its_audit_event_commit_together(client, session, world, audit_breaks_after_writing):
    before = len(_events(session))
    token = csrf_from(client, "/login")
    with pytest.raises(audit_breaks_after_writing):
        client.post("/login", data={"csrf_token": token, "phone": world.phones["pa"], "pin": "0000"})
    assert len(_events(session)) == before
    assert session.get(Participant, world.participants["pa"].id).failed_pins == 0


def test_a_sign_in_and_its_audit_event_commit_together(client, session, world, audit_breaks_after_writing):
    participant = session.get(Participant, world.participants["pa"].id)
    participant.failed_pins = 2
    session.add(participant)
    session.commit()
    before = len(_events(session))
    token = csrf_from(client, "/login")
    with pytest.raises(audit_breaks_after_writing):
        client.post("/login", data={"csrf_token": token, "phone": world.phones["pa"], "pin": PIN})
    assert len(_events(session)) == before
    assert session.get(Participant, world.participants["pa"].id).failed_pins == 2
