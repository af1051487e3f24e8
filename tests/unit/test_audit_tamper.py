"""Edits and deletions made outside the app, which the single unkeyed chain let through (issue 11 item 8)."""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
from datetime import timedelta

import pytest
from sqlalchemy import delete, insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session

from diary import audit, audit_anchor
from diary.models import AuditEvent, DoseLog
from diary.services import dosing

EVENTS = AuditEvent.__table__
DOSES = DoseLog.__table__


def _behind_the_apps_back(app, statement) -> None:
    with app.extensions["diary.engine"].begin() as conn:
        conn.execute(statement)


def _rows(app, table) -> list[dict]:
    with app.extensions["diary.engine"].connect() as conn:
        return [dict(r) for r in conn.execute(select(table).order_by(table.c.id)).mappings()]


@pytest.fixture
def dose(app, session, world, clock) -> DoseLog:
    log = dosing.log_dose(
        session, app.extensions["diary.study"], participant=world.participants["pa"], course_id=world.courses["pa"].id,
        day=3, outcome="taken", taken_at=clock.now - timedelta(minutes=30), client_key="tamper-test",
        source="participant", now=clock.now)
    session.commit()
    return log


def _verify_command(runner) -> tuple[int, str]:
    result = runner.invoke(args=["audit", "verify"])
    return result.exit_code, result.output


def test_the_trail_with_a_dose_and_a_checkpoint_verifies(runner, dose):
    assert runner.invoke(args=["audit", "checkpoint"]).exit_code == 0
    code, output = _verify_command(runner)
    assert code == 0, output
    assert "against the newest checkpoint" in output


def test_deleting_the_newest_event_after_a_checkpoint_is_found(app, runner, session, world, dose):
    pa = world.participants["pa"]  # an event naming no clinical row: only the checkpoint can miss it
    audit.record(session, actor="system", action="checked", entity="Participant", entity_id=pa.id,
                 site_id=pa.site_id, participant_id=pa.id)
    session.commit()
    audit_anchor.checkpoint(session, dose.received_at, app.config["AUDIT_ANCHOR_PATH"])
    newest = _rows(app, EVENTS)[-1]
    _behind_the_apps_back(app, delete(EVENTS).where(EVENTS.c.id == newest["id"]))
    code, output = _verify_command(runner)
    assert code == 1
    assert f"chain {newest['chain']} no longer holds the head anchored" in output


def test_deleting_every_event_after_a_checkpoint_is_found(app, runner, session, world, clock):
    audit_anchor.checkpoint(session, clock.now, app.config["AUDIT_ANCHOR_PATH"])
    _behind_the_apps_back(app, delete(EVENTS))
    code, output = _verify_command(runner)
    assert code == 1
    assert "no longer holds the head anchored" in output


def test_a_dose_log_edited_in_place_is_found(app, runner, dose):
    _behind_the_apps_back(app, update(DOSES).where(DOSES.c.id == dose.id).values(outcome="not_taken",
                                                                                  reason="forgot"))
    code, output = _verify_command(runner)
    assert code == 1
    assert f"DoseLog {dose.id} was changed after its audit event" in output


def test_a_dose_log_inserted_without_an_event_is_found(app, runner, dose):
    row = _rows(app, DOSES)[0]
    row.update(course_day=2, client_key="slipped-in", supersedes_id=None)
    row.pop("id")
    _behind_the_apps_back(app, insert(DOSES).values(**row))
    new_id = _rows(app, DOSES)[-1]["id"]
    code, output = _verify_command(runner)
    assert code == 1
    assert f"DoseLog {new_id} is a row without an audit event" in output


def test_a_dose_log_deleted_with_its_event_left_is_found(app, runner, dose):
    _behind_the_apps_back(app, delete(DOSES).where(DOSES.c.id == dose.id))
    code, output = _verify_command(runner)
    assert code == 1
    assert f"DoseLog {dose.id} has an audit event but the row is gone" in output


def _rewrite_and_rechain(app, target_id: int, digest) -> None:
    """Rewrite one event, then recompute every hash of its chain with `digest`, as a forger would."""
    events = _rows(app, EVENTS)
    target = next(e for e in events if e["id"] == target_id)
    prev = audit.GENESIS
    with app.extensions["diary.engine"].begin() as conn:
        for e in (e for e in events if e["chain"] == target["chain"]):
            if e["id"] == target_id:
                e["after"] = {"outcome": "not_taken"}
            event = AuditEvent(**{**e, "prev_hash": prev})
            event.hash = digest(event)
            conn.execute(update(EVENTS).where(EVENTS.c.id == e["id"])
                         .values(after=e["after"], prev_hash=prev, hash=event.hash))
            prev = event.hash


def test_an_event_rewritten_and_rechained_with_the_unkeyed_hash_is_found(app, runner, dose):
    target = [e for e in _rows(app, EVENTS) if e["entity"] == "DoseLog"][0]
    _rewrite_and_rechain(app, target["id"],
                         lambda e: hashlib.sha256(audit._canonical(e)).hexdigest())
    code, output = _verify_command(runner)
    assert code == 1
    assert "content does not match its hash" in output


def test_an_event_rewritten_and_rechained_with_a_wrong_key_is_found(app, runner, dose):
    target = [e for e in _rows(app, EVENTS) if e["entity"] == "DoseLog"][0]
    _rewrite_and_rechain(app, target["id"],
                         lambda e: hmac.new(b"a guessed key", audit._canonical(e), hashlib.sha256).hexdigest())
    code, output = _verify_command(runner)
    assert code == 1
    assert "content does not match its hash" in output


def test_a_forged_checkpoint_line_is_ignored(app, runner, session, dose):
    audit_anchor.checkpoint(session, dose.received_at, app.config["AUDIT_ANCHOR_PATH"])
    path = app.config["AUDIT_ANCHOR_PATH"]
    with open(path, "a", encoding="utf-8") as f:
        f.write('{"at": "2026-12-01T00:00:00+00:00", "chains": {}, "event_count": 0, "max_event_id": 0,'
                ' "mac": "' + "0" * 64 + '"}\n')
    newest = _rows(app, EVENTS)[-1]
    _behind_the_apps_back(app, delete(EVENTS).where(EVENTS.c.id == newest["id"]))
    assert _verify_command(runner)[0] == 1


def test_a_fork_of_a_chain_is_refused_by_the_database(app, world):
    first = _rows(app, EVENTS)[0]
    fork = {**first, "hash": "f" * 64}
    fork.pop("id")
    with pytest.raises(IntegrityError):
        _behind_the_apps_back(app, insert(EVENTS).values(**fork))


def _append(app, participant, barrier=None, hold: threading.Event | None = None, done=None, errors=None):
    try:
        with Session(app.extensions["diary.engine"]) as s:
            if barrier is not None:
                barrier.wait(timeout=10)
            audit.record(s, actor="system", action="checked", entity="Participant", entity_id=participant.id,
                         site_id=participant.site_id, participant_id=participant.id)
            if hold is not None:
                hold.wait(timeout=10)
            s.commit()
        if done is not None:
            done.set()
    except Exception as exc:  # noqa: BLE001 - reported to the test thread
        if errors is not None:
            errors.append(exc)
        raise


@pytest.mark.postgres  # SQLite has one writer at a time by design
def test_appends_to_different_participants_do_not_wait_for_each_other(app, backend, world):
    pa, pb = world.participants["pa"], world.participants["pb"]
    release, b_done, errors = threading.Event(), threading.Event(), []
    first = threading.Thread(target=_append, args=(app, pa), kwargs={"hold": release, "errors": errors})
    first.start()
    try:
        # pa's transaction holds its chain's lock open; pb's append must commit meanwhile.
        threading.Timer(0.2, lambda: _append(app, pb, done=b_done, errors=errors)).start()
        assert b_done.wait(timeout=5), "an append to another participant's chain waited for this one"
    finally:
        release.set()
        first.join(timeout=10)
    assert not errors
    with Session(app.extensions["diary.engine"]) as s:
        assert audit.verify(s).ok



def _advisory_lock(app, backend, *, granted: bool) -> bool:
    """Whether some transaction holds (granted) or is queued for (not granted) an advisory lock, on
    PostgreSQL. SQLite shows neither: there each step is given half a second instead."""
    if backend == "sqlite":
        threading.Event().wait(0.5)
        return True
    with app.extensions["diary.engine"].connect() as conn:
        return bool(conn.exec_driver_sql(
            "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND granted = %s", (granted,)).scalar())


def _second_waits_for_first(app, backend, participant, second) -> list:
    """An append to `participant`'s chain holds its transaction open; `second(errors)` is started
    once it holds the chain's lock, and the first commits once `second` is queued for that lock.
    The errors either met."""
    release, errors = threading.Event(), []
    first = threading.Thread(target=_append, args=(app, participant), kwargs={"hold": release, "errors": errors})
    waiting = threading.Thread(target=second, args=(errors,))
    first.start()
    try:
        for waited in ("holds the chain", "waits for the chain"):
            if waited == "waits for the chain":
                waiting.start()
            for _ in range(100):
                if _advisory_lock(app, backend, granted=waited == "holds the chain"):
                    break
                threading.Event().wait(0.05)
            else:
                pytest.fail(f"no append ever {waited}")
    finally:
        release.set()
        first.join(timeout=10)
        if waiting.ident is not None:
            waiting.join(timeout=30)
    return errors


def _linked_to_the_first(app, participant, action: str) -> None:
    chain = [e for e in _rows(app, EVENTS) if e["chain"] == f"p:{participant.id}"]
    assert [e["action"] for e in chain[-2:]] == ["checked", action]
    assert chain[-1]["prev_hash"] == chain[-2]["hash"]
    with Session(app.extensions["diary.engine"]) as s:
        assert audit.verify(s).ok


def test_an_append_that_waited_for_the_chain_links_to_the_event_it_waited_for(app, backend, world):
    # The head is read after the lock is granted, with what the first append committed in view: a
    # head read before the wait would link the second event to the first one's predecessor, and
    # the database would refuse it as a fork.
    pa = world.participants["pa"]
    errors = _second_waits_for_first(app, backend, pa, lambda errors: _append(app, pa, errors=errors))
    assert not errors
    _linked_to_the_first(app, pa, "checked")


def _check_off(app, world, clock, errors):
    try:
        with Session(app.extensions["diary.engine"]) as s:
            dosing.record_dose(s, app.extensions["diary.study"], participant=world.participants["pa"],
                               course_id=world.courses["pa"].id, day=3, outcome="taken", client_key="waited-for-chain",
                               source="participant", now=clock.now, taken_at=clock.now - timedelta(minutes=5))
            s.commit()
    except Exception as exc:  # noqa: BLE001 - reported to the test thread
        errors.append(exc)
        raise


def test_a_check_off_that_waited_for_the_chain_links_to_the_event_it_waited_for(app, backend, world, clock):
    # A check-off locks its participant's chain and reads its head with the dose log's own INSERT
    # (PostgreSQL): the lock is taken once the row is written, the head read after the lock is
    # granted, so an append committed meanwhile is the head it links to, never a fork.
    pa = world.participants["pa"]
    errors = _second_waits_for_first(app, backend, pa, lambda errors: _check_off(app, world, clock, errors))
    assert not errors
    _linked_to_the_first(app, pa, "dose_logged")


def test_concurrent_appends_to_one_chain_never_fork_it(app, world):
    pa = world.participants["pa"]
    before = len([e for e in _rows(app, EVENTS) if e["chain"] == f"p:{pa.id}"])
    workers = 6
    barrier, errors = threading.Barrier(workers), []
    threads = [threading.Thread(target=_append, args=(app, pa),
                                kwargs={"barrier": barrier, "errors": errors}) for _ in range(workers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    assert not errors
    chain = [e for e in _rows(app, EVENTS) if e["chain"] == f"p:{pa.id}"]
    assert len(chain) == before + workers
    assert [e["prev_hash"] for e in chain[1:]] == [e["hash"] for e in chain[:-1]]
    with Session(app.extensions["diary.engine"]) as s:
        assert audit.verify(s).ok


def _anchor_lines(app) -> list[str]:
    with open(app.config["AUDIT_ANCHOR_PATH"], encoding="utf-8") as f:
        return f.read().splitlines()


def test_each_scheduler_tick_appends_a_signed_checkpoint_that_verify_uses(app, runner, session, world, dose,
                                                                            caplog):
    caplog.set_level("INFO", logger="diary.audit_anchor")
    assert runner.invoke(args=["scheduler", "tick", "--now", "2026-12-01T09:00+08:00"]).exit_code == 0
    assert len(_anchor_lines(app)) == 1
    pa = world.participants["pa"]
    audit.record(session, actor="system", action="checked", entity="Participant", entity_id=pa.id,
                 site_id=pa.site_id, participant_id=pa.id)
    session.commit()
    for now in ("2026-12-01T09:05+08:00", "2026-12-01T09:10+08:00"):
        assert runner.invoke(args=["scheduler", "tick", "--now", now]).exit_code == 0
    # A new event, a new checkpoint; a tick with nothing new adds no line.
    lines = _anchor_lines(app)
    assert len(lines) == 2
    assert json.loads(lines[-1])["event_count"] == json.loads(lines[0])["event_count"] + 1
    assert "digest" in caplog.text
    code, output = _verify_command(runner)
    assert code == 0, output
    assert "against the newest checkpoint" in output


def test_a_trail_checked_with_another_key_fails(app, runner, dose):
    app.extensions["diary.audit_key"] = audit.derive_key("test-data-key", "another audit key")
    code, output = _verify_command(runner)
    assert code == 1
    assert "content does not match its hash" in output


@pytest.mark.any_db
def test_the_audit_key_is_its_own_setting_or_derived_from_the_data_key(tmp_path):
    from diary.config import load_settings

    (tmp_path / "audit_key").write_text("from a file\n", encoding="utf-8")
    settings = load_settings({"AUDIT_KEY_FILE": str(tmp_path / "audit_key")}, instance_path=str(tmp_path))
    assert settings["AUDIT_KEY"] == "from a file"
    assert audit.derive_key("data", "from a file") == b"from a file"
    derived = audit.derive_key("data")
    assert derived != b"data" and derived == audit.derive_key("data") != audit.derive_key("other data")
    assert load_settings({}, instance_path=str(tmp_path))["AUDIT_ANCHOR_PATH"] == str(tmp_path / "audit-anchors.jsonl")


@pytest.mark.any_db
def test_the_anchor_file_is_read_back_from_its_end_across_blocks(tmp_path):
    path = tmp_path / "anchors.jsonl"
    lines = [f'{{"n": {i}, "pad": "{"x" * i}"}}' for i in range(40)]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    assert [b.decode() for b in audit_anchor._lines_from_end(path, block=7)] == lines[::-1]


def test_a_checkpoint_is_refused_once_an_anchored_head_is_gone(app, runner, session, world, dose):
    pa = world.participants["pa"]
    audit.record(session, actor="system", action="checked", entity="Participant", entity_id=pa.id,
                 site_id=pa.site_id, participant_id=pa.id)
    session.commit()
    assert runner.invoke(args=["audit", "checkpoint"]).exit_code == 0
    newest = _rows(app, EVENTS)[-1]
    _behind_the_apps_back(app, delete(EVENTS).where(EVENTS.c.id == newest["id"]))
    # Neither the scheduler nor the command anchors the loss, so verify keeps naming it.
    assert runner.invoke(args=["scheduler", "tick", "--now", "2026-12-01T09:05+08:00"]).exit_code == 0
    refused = runner.invoke(args=["audit", "checkpoint"])
    assert refused.exit_code == 1
    assert "REFUSED" in refused.output
    assert len(_anchor_lines(app)) == 1
    code, output = _verify_command(runner)
    assert code == 1
    assert f"chain {newest['chain']}" in output and "anchored" in output  # the tick may have appended to it
