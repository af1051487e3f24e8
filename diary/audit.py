"""Append-only, keyed hash chains of audit events (ICH E6 / 21 CFR Part 11: who, what, when, why).

Design (issue 11 item 8; what it detects is in the README, "What the audit trail detects"):
- One chain per participant ("p:<id>"), else per site ("s:<id>"), else one global chain ("g").
  Appending locks only that chain (a PostgreSQL transaction-level advisory lock on a 64-bit hash
  of its name), so check-offs of different participants never queue behind each other. A UNIQUE
  (chain, prev_hash) constraint makes a fork impossible even if the lock were skipped.
- Each event's hash is HMAC-SHA256 under AUDIT_KEY, a key that is not in the database: whoever
  can only write to the database cannot recompute a chain after rewriting an event.
- An event about an append-only clinical row carries `row_hash`, an HMAC of that row's stored
  values, so an edit of the row in place, or a row inserted with no event, is found by `verify`.
- Chain heads are anchored outside the database by signed checkpoints (diary.audit_anchor).
- Events written before this design are the chain "legacy", still verified with the old unkeyed
  SHA-256 algorithm; nothing is appended to it any more.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from dataclasses import dataclass
from datetime import UTC, datetime
from types import SimpleNamespace
from typing import Any, NamedTuple

from flask import current_app, has_app_context
from sqlalchemy import BigInteger, String, bindparam, func, text
from sqlalchemy import insert as sa_insert
from sqlalchemy import select as sa_select
from sqlmodel import Session, select

from diary.inserts import insert_once
from diary.models import APPEND_ONLY, AuditEvent
from diary.sqltypes import utc_now

GENESIS = "0" * 64
LEGACY = "legacy"
# The append-only clinical models whose rows each audit event fingerprints (the trail itself aside).
CLINICAL = {model.__name__: model for model in APPEND_ONLY if model is not AuditEvent}

_configured_key: bytes | None = None


def derive_key(data_key: str, audit_key: str | None = None) -> bytes:
    """AUDIT_KEY when set; otherwise a key derived from DATA_ENCRYPTION_KEY under its own label,
    so the chain key is never the encryption key itself. "hex:…" gives the key's bytes (what
    `flask audit derived-key` prints, to pin a derived key before the data key is rotated)."""
    if audit_key and audit_key.startswith("hex:"):
        return bytes.fromhex(audit_key[4:])
    if audit_key:
        return audit_key.encode()
    return hmac.new(data_key.encode(), b"diary audit-chain v1", hashlib.sha256).digest()


def configure(key: bytes) -> None:
    """Called by create_app, so the CLI, the scheduler and the web app all sign with one key."""
    global _configured_key
    _configured_key = key


def _key() -> bytes:
    # The running app's own key first: one process may hold several apps (tests, tools).
    if has_app_context() and "diary.audit_key" in current_app.extensions:
        return current_app.extensions["diary.audit_key"]
    if _configured_key is None:
        raise RuntimeError("the audit trail's key is not configured (create_app configures it)")
    return _configured_key


def mac(payload: bytes, key: bytes | None = None) -> str:
    return hmac.new(key or _key(), payload, hashlib.sha256).hexdigest()


def chain_of(*, site_id: int | None, participant_id: int | None) -> str:
    if participant_id is not None:
        return f"p:{participant_id}"
    if site_id is not None:
        return f"s:{site_id}"
    return "g"


def _lock_id(chain: str) -> int:
    """A signed 64-bit advisory-lock key for one chain (distinct from the app's fixed lock ids
    only by chance, which costs at worst an unneeded wait)."""
    return int.from_bytes(hashlib.sha256(b"audit-chain:" + chain.encode()).digest()[:8], "big", signed=True)


def _canonical(event: AuditEvent | SimpleNamespace, *, legacy: bool = False) -> bytes:
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
    if not legacy:
        body["chain"] = event.chain
        body["row_hash"] = event.row_hash
    return json.dumps(body, sort_keys=True, ensure_ascii=False, default=str).encode()


def _digest(event: AuditEvent | SimpleNamespace) -> str:
    """The event's hash as stored: keyed, or the old unkeyed SHA-256 for the legacy chain."""
    if event.chain == LEGACY:
        return hashlib.sha256(_canonical(event, legacy=True)).hexdigest()
    return mac(_canonical(event))


def _value(v: Any) -> Any:
    if isinstance(v, datetime):
        return (v if v.tzinfo else v.replace(tzinfo=UTC)).astimezone(UTC).isoformat()
    if hasattr(v, "isoformat"):
        return v.isoformat()
    return v


def row_fingerprint(values: dict[str, Any]) -> str:
    """HMAC of a clinical row's column values as the database returns them."""
    canonical = {k: _value(v) for k, v in values.items()}
    return mac(json.dumps(canonical, sort_keys=True, ensure_ascii=False, default=str).encode())


# Clinical rows a migration converted in place, and the form they had when an event fingerprinted
# them: such a row verifies in its current form or in its form before the conversion, so an upgrade
# does not read as tampering while any other change still does. Migration 9d4e2b7c1a30 turned
# DoseLog.fasting True/False into 'yes'/'no' (issue 10, item 11).
LEGACY_ROW_FORMS: dict[str, tuple] = {
    "DoseLog": (lambda row: {**row, "fasting": {"yes": True, "no": False}.get(row["fasting"], row["fasting"])},),
}


def row_matches(entity: str, row: dict[str, Any], fingerprint: str) -> bool:
    """Whether a clinical row is the one its audit event fingerprinted (LEGACY_ROW_FORMS aside)."""
    forms = (dict(row), *(form(dict(row)) for form in LEGACY_ROW_FORMS.get(entity, ())))
    return any(hmac.compare_digest(fingerprint, row_fingerprint(form)) for form in forms)


def _stored_row_hash(session: Session, entity: str, entity_id: str | None) -> str | None:
    model = CLINICAL.get(entity)
    if model is None or entity_id is None or not str(entity_id).isdigit():
        return None
    table = model.__table__
    # Read back through the connection, not the ORM object: verify will hash the same stored form.
    row = session.execute(sa_select(table).where(table.c.id == int(entity_id))).mappings().first()
    return None if row is None else row_fingerprint(dict(row))


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
    row: Any = None,
    locked: LockedHead | None = None,
) -> Appended:
    """Append one event in the caller's transaction, so the change and its trail commit together;
    its id, chain and hash.

    `row`: the clinical row this event names as the database returned it when it was written
    (diary.inserts.insert_once), so it is fingerprinted without being read back: it must hold what a SELECT
    returns, or verify would report the row changed.
    `locked`: the event's chain as insert_locked locked it and read its head with that row, when
    nothing was appended to the chain since (an event linked to a stale head is a fork, which the
    database refuses)."""
    chain = chain_of(site_id=site_id, participant_id=participant_id)
    entity_id = None if entity_id is None else str(entity_id)
    session.flush()  # the clinical row this event names must be readable for its fingerprint
    conn = session.connection()
    if locked is None:
        last = _locked_head(conn, chain)
    elif locked.chain == chain:
        last = locked.hash
    else:
        raise ValueError(f"the chain locked with the row is {locked.chain}, not this event's {chain}")
    # Stored as UTC and read back as UTC: hash the same form, or a local-time instant
    # (+08:00) would never verify.
    at = (at or utc_now()).astimezone(UTC)
    # The event's columns as a plain namespace: a SQLModel object of fifteen fields was a third of
    # an append's Python work, on every clinical write (issue 15). Hashed by the same _canonical
    # that verify applies to the stored row.
    event = SimpleNamespace(
        at=at,
        actor=actor,
        action=action,
        entity=entity,
        entity_id=entity_id,
        site_id=site_id,
        participant_id=participant_id,
        before=jsonable(before),
        after=jsonable(after),
        reason=reason,
        chain=chain,
        prev_hash=last or GENESIS,
        row_hash=row_fingerprint(dict(row)) if row is not None and entity in CLINICAL
        else _stored_row_hash(session, entity, entity_id),
    )
    event.hash = _digest(event)
    # One INSERT, not a unit-of-work flush: the event is written now.
    event_id = conn.execute(_APPEND, {name: getattr(event, name) for name in _COLUMNS}).scalar_one()
    return Appended(event_id, chain, event.hash)


class LockedHead(NamedTuple):
    """A chain locked for this transaction, and its newest hash when it was locked (None: a new chain)."""

    chain: str
    hash: str | None


def insert_locked(session: Session, table, values: dict, *, site_id: int | None,
                  participant_id: int | None) -> tuple[dict, LockedHead] | None:
    """A clinical row written once (diary.inserts.insert_once), and the audit chain its event will
    extend (the chain of `site_id` and `participant_id`, as record() names it), locked and its
    head read: for record(..., row=, locked=). None, with nothing written and nothing locked, when
    a unique rule refused the row. On PostgreSQL the lock and the head come back with the row from
    the INSERT's own RETURNING (audit_lock_chain_head runs once the row is written): a check-off
    sends one statement fewer (issue 15). SQLite takes them after it."""
    chain = chain_of(site_id=site_id, participant_id=participant_id)
    if session.get_bind().dialect.name != "postgresql":
        row = insert_once(session, table, values)
        return None if row is None else (row, LockedHead(chain, _locked_head(session.connection(), chain)))
    row = insert_once(session, table, {**values, "audit_lock": _lock_id(chain), "audit_chain": chain},
                      _PG_LOCKED_HEAD_RETURNED)
    if row is None:
        return None
    return row, LockedHead(chain, row.pop(_HEAD_COLUMN))


def _locked_head(conn, chain: str) -> str | None:
    """Lock `chain` until the transaction ends, then read its newest hash (None for a new chain):
    the next append to it waits, and reads this one's event as its head. PostgreSQL: one call of
    audit_lock_chain_head (migration 4f8a2c6e1d90), which takes the chain's transaction-level
    advisory lock and then reads the head in a statement of its own, with a snapshot taken after
    the lock was granted. SQLite has one writer at a time: take the write lock before reading the
    head, so a concurrent append cannot read the same head (the UNIQUE (chain, prev_hash) would
    refuse it)."""
    if conn.dialect.name == "postgresql":
        return conn.execute(_PG_LOCKED_HEAD, {"k": _lock_id(chain), "chain": chain}).scalar()
    conn.execute(_SQLITE_WRITE_LOCK)
    return conn.execute(_HEAD, {"chain": chain}).scalar()


# Built once: record runs on every clinical write.
_PG_LOCKED_HEAD = text("SELECT audit_lock_chain_head(:k, :chain)")
_HEAD_COLUMN = "audit_chain_head"
_PG_LOCKED_HEAD_RETURNED = (func.audit_lock_chain_head(bindparam("audit_lock", type_=BigInteger),
                                                       bindparam("audit_chain", type_=String))
                            .label(_HEAD_COLUMN),)
_SQLITE_WRITE_LOCK = text("UPDATE auditevent SET chain = chain WHERE 1 = 0")
_TABLE = AuditEvent.__table__
_HEAD = sa_select(_TABLE.c.hash).where(_TABLE.c.chain == bindparam("chain")).order_by(_TABLE.c.id.desc()).limit(1)
_APPEND = sa_insert(_TABLE).returning(_TABLE.c.id)


class Appended(NamedTuple):
    """An event record() appended: where it is (id), which chain it extends, and its hash."""

    id: int
    chain: str
    hash: str


_COLUMNS = tuple(c.name for c in _TABLE.c if c.name != "id")


@dataclass(frozen=True)
class ChainReport:
    checked: int
    first_broken_id: int | None
    problem: str | None
    # Set instead of first_broken_id when the break is not one event: a clinical row without
    # an event, or an anchored head that is gone.
    finding: str | None = None
    anchored: bool = False

    @property
    def ok(self) -> bool:
        return self.first_broken_id is None and self.finding is None


def verify(session: Session, batch: int = 5000, *, anchor_path: str | None = None) -> ChainReport:
    """Walk every chain in id order and name the first event whose link or content does not
    match; then check each clinical row against the newest event that names it; then check the
    newest signed checkpoint's heads are still there."""
    from diary import audit_anchor

    heads: dict[str, str] = {}
    lengths: dict[str, int] = {}
    anchor = audit_anchor.newest(anchor_path)
    wanted = {} if anchor is None else {c: (h, n) for c, (h, n) in anchor["chains"].items()}
    seen_anchor: set[str] = set()
    named: dict[tuple[str, str], str | None] = {}
    checked = 0
    last_id = 0
    while True:
        # populate_existing: check what is stored, not what this session may have cached.
        rows = session.exec(
            select(AuditEvent).where(AuditEvent.id > last_id).order_by(AuditEvent.id).limit(batch)
            .execution_options(populate_existing=True)
        ).all()
        if not rows:
            break
        for event in rows:
            if event.chain == LEGACY and len(heads) > (LEGACY in heads):
                # Legacy events all predate the keyed chains: one after them was relabelled.
                return ChainReport(checked, event.id, "a legacy event follows keyed events")
            if event.prev_hash != heads.get(event.chain, GENESIS):
                return ChainReport(checked, event.id, "link to the previous event is broken")
            if not hmac.compare_digest(_digest(event), event.hash):
                return ChainReport(checked, event.id, "content does not match its hash")
            heads[event.chain] = event.hash
            lengths[event.chain] = lengths.get(event.chain, 0) + 1
            if event.chain in wanted and wanted[event.chain][1] == lengths[event.chain]:
                if event.hash != wanted[event.chain][0]:
                    return ChainReport(checked, event.id, f"differs from the head of chain {event.chain} "
                                                          "anchored in the checkpoint")
                seen_anchor.add(event.chain)
            if event.entity in CLINICAL and event.entity_id is not None:
                # Legacy events name a row without fingerprinting it (None): the row is accounted for.
                named[(event.entity, event.entity_id)] = event.row_hash
            checked += 1
            last_id = event.id
    finding = _check_clinical_rows(session, named)
    if finding is None and anchor is not None:
        finding = audit_anchor.missing(anchor, seen_anchor, lengths, checked)
    return ChainReport(checked, None, None, finding, anchored=anchor is not None)


def _check_clinical_rows(session: Session, named: dict[tuple[str, str], str | None]) -> str | None:
    present: set[tuple[str, str]] = set()
    for name, model in CLINICAL.items():
        table = model.__table__
        for row in session.execute(sa_select(table).order_by(table.c.id)).mappings():
            key = (name, str(row["id"]))
            present.add(key)
            if key not in named:
                return f"{name} {row['id']} is a row without an audit event"
            if named[key] is not None and not row_matches(name, row, named[key]):
                return f"{name} {row['id']} was changed after its audit event"
    for (name, row_id), row_hash in named.items():
        if row_hash is not None and (name, row_id) not in present:
            return f"{name} {row_id} has an audit event but the row is gone"
    return None
