"""Scheduler heartbeats and the health summary (/health, the staff alarm banner)."""

from __future__ import annotations

import socket
from datetime import UTC, datetime, timedelta

from sqlalchemy import delete, func
from sqlmodel import Session, select

from diary.models import Message, SchedulerHeartbeat

KEEP = timedelta(days=2)
BACKLOG = ("queued", "sending")


def record(session: Session, now: datetime, duration_ms: int, summary: dict) -> None:
    """One row per tick; rows older than two days are pruned by the same tick."""
    session.add(SchedulerHeartbeat(at=now, finished_at=now + timedelta(milliseconds=duration_ms),
                                   duration_ms=duration_ms, summary=summary,
                                   host=socket.gethostname()[:64]))
    session.exec(delete(SchedulerHeartbeat).where(SchedulerHeartbeat.at < now - KEEP))
    session.commit()


def last_beat(session: Session) -> SchedulerHeartbeat | None:
    return session.exec(select(SchedulerHeartbeat).order_by(SchedulerHeartbeat.at.desc()).limit(1)).first()


def heartbeat_age(session: Session, now: datetime) -> timedelta | None:
    beat = last_beat(session)
    return None if beat is None else now - beat.at


def is_stale(session: Session, now: datetime, stale_after: timedelta) -> bool:
    """True when the scheduler has never ticked or not within `stale_after`."""
    age = heartbeat_age(session, now)
    return age is None or age > stale_after


def outbox_state(session: Session, now: datetime) -> dict:
    """Counts and ages only: /health is read by monitoring, so it holds no personal data."""
    backlog, oldest = session.exec(
        select(func.count(), func.min(Message.not_before))
        .where(Message.status.in_(BACKLOG), Message.not_before <= now)
    ).one()
    failed = session.exec(select(func.count()).where(Message.status == "failed")).one()
    return {
        "backlog": int(backlog),
        "oldest_unsent_age_seconds": None if oldest is None else max(int((now - _aware(oldest)).total_seconds()), 0),
        "failed": int(failed),
    }


def _aware(value: datetime) -> datetime:
    # min() over the column may come back without the column's type on some dialects.
    return value if value.tzinfo else value.replace(tzinfo=UTC)
