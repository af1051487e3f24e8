"""Signed checkpoints of the audit chains' heads, kept outside the database.

A checkpoint is one JSON line appended to AUDIT_ANCHOR_PATH: the time, the highest event id, the
number of events, and every chain's head hash and length, with an HMAC under the audit key over
all of it. The scheduler appends one every tick and `flask audit checkpoint` on demand; each
checkpoint's digest is also logged, so a copy lives in the logs as well. `verify` takes the newest
line whose HMAC is valid and requires every anchored head to still sit at its anchored length and
the number of events not to have shrunk: deleting the newest events, or the whole trail, before
that checkpoint is found. Keep the file on storage the database's users cannot rewrite.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import os
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

from flask import current_app, has_app_context
from sqlalchemy import func
from sqlmodel import Session, select

from diary import audit
from diary.models import AuditEvent

log = logging.getLogger(__name__)


def _path(path: str | None) -> Path | None:
    if path:
        return Path(path)
    if has_app_context():
        return Path(current_app.config["AUDIT_ANCHOR_PATH"])
    return None


class AnchorError(RuntimeError):
    """The trail no longer holds what the newest checkpoint anchored."""


def _lost_since(session: Session, last: dict, lengths: dict[str, int]) -> str | None:
    heads = [head for head, _ in last["chains"].values()]
    found = dict(session.exec(select(AuditEvent.hash, AuditEvent.chain).where(AuditEvent.hash.in_(heads))).all())
    for chain, (head, length) in sorted(last["chains"].items()):
        if found.get(head) != chain or lengths.get(chain, 0) < length:
            return f"chain {chain} no longer holds the head anchored at {last['at']}"
    if sum(lengths.values()) < last["event_count"]:
        return f"events are missing since the checkpoint at {last['at']}"
    return None


def _body(checkpoint: dict) -> bytes:
    unsigned = {k: v for k, v in checkpoint.items() if k != "mac"}
    return json.dumps(unsigned, sort_keys=True, ensure_ascii=False).encode()


def checkpoint(session: Session, now: datetime, path: str | None = None) -> dict:
    """Append a signed checkpoint of every chain's head, unless nothing changed since the newest
    one; returns the checkpoint now in force."""
    counts = session.exec(select(AuditEvent.chain, func.count(), func.max(AuditEvent.id))
                          .group_by(AuditEvent.chain)).all()
    tops = [top for _, _, top in counts]
    heads = dict(session.exec(select(AuditEvent.id, AuditEvent.hash).where(AuditEvent.id.in_(tops))).all())
    point = {
        "at": now.astimezone(UTC).isoformat(),
        "max_event_id": max((top for _, _, top in counts), default=0),
        "event_count": sum(n for _, n, _ in counts),
        "chains": {chain: [heads[top], n] for chain, n, top in counts},
    }
    point["mac"] = audit.mac(_body(point))
    target = _path(path)
    if target is None:
        raise RuntimeError("no AUDIT_ANCHOR_PATH: pass a path or call inside the app")
    last = newest(str(target))
    if last is not None:
        # Never anchor a trail that has lost what the last checkpoint anchored: the new
        # checkpoint would become the newest and hide the loss from verify.
        problem = _lost_since(session, last, {chain: n for chain, n, _ in counts})
        if problem:
            log.error("audit checkpoint refused: %s", problem)
            raise AnchorError(problem)
        if last["chains"] == point["chains"] and last["event_count"] == point["event_count"]:
            return last  # nothing new since the last checkpoint: the file grows only with the trail
    target.parent.mkdir(parents=True, exist_ok=True)
    # O_APPEND: concurrent writers (two schedulers, a CLI run) each add whole lines.
    fd = os.open(target, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o640)
    try:
        os.write(fd, (json.dumps(point, sort_keys=True) + "\n").encode())
        os.fsync(fd)
    finally:
        os.close(fd)
    log.info("audit checkpoint %s: %d events in %d chains, digest %s", point["at"], point["event_count"],
             len(point["chains"]), hashlib.sha256(_body(point)).hexdigest())
    return point


def _lines_from_end(target: Path, block: int = 1 << 16) -> Iterator[bytes]:
    """The file's lines, newest first, reading back from its end (it grows every tick)."""
    with open(target, "rb") as f:
        pos = f.seek(0, os.SEEK_END)
        rest = b""
        while pos > 0:
            step = min(block, pos)
            pos -= step
            f.seek(pos)
            lines = (f.read(step) + rest).split(b"\n")
            rest = lines[0]
            yield from (line for line in reversed(lines[1:]) if line.strip())
        if rest.strip():
            yield rest


def _valid(line: bytes) -> dict | None:
    try:
        point = json.loads(line)
    except ValueError:
        return None
    if not isinstance(point, dict) or not isinstance(point.get("chains"), dict):
        return None
    return point if hmac.compare_digest(str(point.get("mac", "")), audit.mac(_body(point))) else None


def newest(path: str | None = None) -> dict | None:
    """The newest checkpoint whose signature is valid (a line that is not is ignored)."""
    target = _path(path)
    if target is None or not target.exists():
        return None
    return next((point for point in map(_valid, _lines_from_end(target)) if point is not None), None)


def missing(point: dict, seen: set[str], lengths: dict[str, int], count: int) -> str | None:
    """What the trail lacks against a checkpoint (verify has walked it), or None."""
    for chain, (_head, length) in sorted(point["chains"].items()):
        if chain not in seen:
            return (f"chain {chain} no longer holds the head anchored at {point['at']} "
                    f"(anchored length {length}, now {lengths.get(chain, 0)})")
        if chain == audit.LEGACY and lengths.get(chain, 0) != length:
            return "the legacy chain has grown since it was anchored"
    if audit.LEGACY in lengths and audit.LEGACY not in point["chains"]:
        return "legacy events appeared after the checkpoint"
    if count < point["event_count"]:
        return f"{point['event_count'] - count} events are missing since the checkpoint at {point['at']}"
    return None
