"""An audit trail written before keyed chains still verifies after the migration, and stays closed."""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime

from sqlalchemy import text
from sqlmodel import Session, select

from diary import audit, db, migrate
from diary.models import AuditEvent

BEFORE_CHAINS = "c3d8f0a1b2e4"


def _old_digest(body: dict) -> str:
    """diary/audit.py's hash before keyed chains: unkeyed SHA-256 of the event's fields."""
    return hashlib.sha256(json.dumps(body, sort_keys=True, ensure_ascii=False, default=str).encode()).hexdigest()


def _old_trail(engine, count: int) -> None:
    prev = audit.GENESIS
    with engine.begin() as conn:
        for i in range(count):
            at = datetime(2026, 11, 1, 9, i, tzinfo=UTC)
            body = {"at": at.isoformat(), "actor": "cli", "action": "site_created", "entity": "Site",
                    "entity_id": str(i + 1), "site_id": i + 1, "participant_id": None, "before": None,
                    "after": {"code": f"S{i}"}, "reason": None, "prev_hash": prev}
            digest = _old_digest(body)
            conn.execute(text(
                "INSERT INTO auditevent (at, actor, action, entity, entity_id, site_id, participant_id, after,"
                " prev_hash, hash) VALUES (:at, :actor, :action, :entity, :entity_id, :site_id, NULL, :after,"
                " :prev_hash, :hash)"),
                {**body, "after": json.dumps(body["after"]), "hash": digest})
            prev = digest


def _migrated_with_old_trail(empty_database_url):
    engine = db.make_engine(empty_database_url)
    migrate.upgrade(engine, BEFORE_CHAINS)
    _old_trail(engine, 3)
    migrate.upgrade(engine)
    return engine


def _with_key(fn):
    audit.configure(audit.derive_key("test-data-key"))
    return fn()


def test_an_old_trail_verifies_after_the_migration_and_keyed_events_follow_it(empty_database_url):
    engine = _migrated_with_old_trail(empty_database_url)
    try:
        with Session(engine) as s:
            assert set(s.exec(select(AuditEvent.chain)).all()) == {audit.LEGACY}
            _with_key(lambda: audit.record(s, actor="cli", action="site_created", entity="Site", site_id=9))
            s.commit()
            report = audit.verify(s)
            assert report.ok, report
            assert report.checked == 4
    finally:
        engine.dispose()


def test_an_edited_old_event_is_still_found(empty_database_url):
    engine = _migrated_with_old_trail(empty_database_url)
    try:
        with engine.begin() as conn:
            conn.execute(text("UPDATE auditevent SET actor = 'staff:9' WHERE id = 2"))
        with Session(engine) as s:
            assert _with_key(lambda: audit.verify(s)).first_broken_id == 2
    finally:
        engine.dispose()


def test_a_keyed_event_relabelled_legacy_and_rehashed_unkeyed_is_found(empty_database_url):
    engine = _migrated_with_old_trail(empty_database_url)
    try:
        with Session(engine) as s:
            event = _with_key(lambda: audit.record(s, actor="cli", action="site_created", entity="Site", site_id=9))
            s.commit()
            event_id = event.id
            newer = audit.record(s, actor="cli", action="site_created", entity="Site", site_id=9)
            s.commit()
            newer_id = newer.id
        with Session(engine) as s:  # relabel the newest keyed event and re-hash it the old way
            forged = s.get(AuditEvent, newer_id)
            legacy_head = s.exec(select(AuditEvent.hash).where(AuditEvent.chain == audit.LEGACY)
                                 .order_by(AuditEvent.id.desc())).first()
            forged.chain, forged.prev_hash = audit.LEGACY, legacy_head
            forged_hash = audit._digest(forged)
        with engine.begin() as conn:
            conn.execute(text("UPDATE auditevent SET chain = 'legacy', prev_hash = :p, hash = :h WHERE id = :i"),
                         {"p": legacy_head, "h": forged_hash, "i": newer_id})
        with Session(engine) as s:
            report = audit.verify(s)  # no checkpoint: the order alone gives it away
            assert report.first_broken_id == newer_id
            assert "legacy event follows keyed events" in report.problem
            assert event_id < newer_id
    finally:
        engine.dispose()
