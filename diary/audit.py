"""Append-only, hash-chained audit events (ICH E6 / 21 CFR Part 11: who, what, when, why)."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import text
from sqlmodel import Session, select

from diary.models import AuditEvent
from diary.sqltypes import utc_now

GENESIS = "0" * 64
# Any fixed 64-bit number: serialises chain appends across PostgreSQL connections.
_CHAIN_LOCK = 0x6469617279_0001


def _canonical(event: AuditEvent) -> bytes:
    body = {
        "at": event.at.isoformat(),
        "actor": event.actor,
        "action": event.action,
        "entity": event.entity,
        "entity_id": event.entity_id,
        "site_id": event.site_id,
        "participant_id": event.participant_id,
        "before": event.before,
        "after": event.after,
        "reason": event.reason,
        "prev_hash": event.prev_hash,
    }
    return json.dumps(body, sort_keys=True, ensure_ascii=False, default=str).encode()


def _digest(event: AuditEvent) -> str:
    return hashlib.sha256(_canonical(event)).hexdigest()


def jsonable(values: dict[str, Any] | None) -> dict[str, Any] | None:
    """Before/after snapshots as JSON-safe values (dates as ISO 8601)."""
    if values is None:
        return None
    return json.loads(json.dumps(values, default=lambda v: v.isoformat() if hasattr(v, "isoformat") else str(v)))


def record(
    session: Session,
    *,
    actor: str,
    action: str,
    entity: str,
    entity_id: Any = None,
    site_id: int | None = None,
    participant_id: int | None = None,
    before: dict | None = None,
    after: dict | None = None,
    reason: str | None = None,
    at: datetime | None = None,
) -> AuditEvent:
    """Append one event in the caller's transaction, so the change and its trail commit together."""
    if session.get_bind().dialect.name == "postgresql":
        session.exec(text("SELECT pg_advisory_xact_lock(:k)").bindparams(k=_CHAIN_LOCK))
    # Stored as UTC and read back as UTC: hash the same form, or a local-time instant
    # (+08:00) would never verify.
    at = (at or utc_now()).astimezone(UTC)
    last = session.exec(select(AuditEvent.hash).order_by(AuditEvent.id.desc()).limit(1)).first()
    event = AuditEvent(
        at=at,
        actor=actor,
        action=action,
        entity=entity,
        entity_id=None if entity_id is None else str(entity_id),
        site_id=site_id,
        participant_id=participant_id,
        before=jsonable(before),
        after=jsonable(after),
        reason=reason,
        prev_hash=last or GENESIS,
    )
    event.hash = _digest(event)
    session.add(event)
    session.flush()
    return event


@dataclass(frozen=True)
class ChainReport:
    checked: int
    first_broken_id: int | None
    problem: str | None

    @property
    def ok(self) -> bool:
        return self.first_broken_id is None


def verify(session: Session, batch: int = 5000) -> ChainReport:
    """Walk the chain in id order and name the first event whose link or content does not match."""
    prev = GENESIS
    checked = 0
    last_id = 0
    while True:
        # populate_existing: check what is stored, not what this session may have cached.
        rows = session.exec(
            select(AuditEvent).where(AuditEvent.id > last_id).order_by(AuditEvent.id).limit(batch)
            .execution_options(populate_existing=True)
        ).all()
        if not rows:
            return ChainReport(checked, None, None)
        for event in rows:
            if event.prev_hash != prev:
                return ChainReport(checked, event.id, "link to the previous event is broken")
            if _digest(event) != event.hash:
                return ChainReport(checked, event.id, "content does not match its hash")
            prev = event.hash
            checked += 1
            last_id = event.id
