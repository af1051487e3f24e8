"""Flags: things site staff must look at, each raised once (unique key)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import case, update
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, select

from diary import audit
from diary.models import Flag, Participant
from diary.services.flag_details import FlagDetail


def raise_flag(
    session: Session, *, key: str, kind: str, site_id: int, detail: str | FlagDetail, now: datetime,
    participant_id: int | None = None,
) -> Flag | None:
    """Raise the flag named `key` unless it exists; returns the new flag or None. A catalogue
    `detail` (flag_details.detail) is shown in each reader's language; plain text as it is."""
    if session.exec(select(Flag.id).where(Flag.key == key)).first():
        return None
    text, detail_key, params = (detail.english(), detail.key, detail.params) if isinstance(detail, FlagDetail) \
        else (detail, None, None)
    flag = Flag(key=key, kind=kind, site_id=site_id, participant_id=participant_id,
                detail=text[:500], detail_key=detail_key, detail_params=params, raised_at=now)
    try:
        with session.begin_nested():
            session.add(flag)
    except IntegrityError:
        return None  # raised a moment ago by another process
    audit.record(session, actor="system", action="flag_raised", entity="Flag", entity_id=flag.id,
                 site_id=site_id, participant_id=participant_id, at=now,
                 after={"key": key, "kind": kind, "detail": flag.detail})
    return flag


class FlagError(ValueError):
    def __init__(self, code: str):
        super().__init__(code)
        self.code = code


def acknowledge(session: Session, *, flag: Flag, staff_id: int, note: str, now: datetime) -> Flag:
    """Acknowledge a flag with a note, by a named person; the flag stays, in the history.

    Once: a conditional UPDATE, so two nurses acknowledging at the same moment cannot both succeed
    (nor the second overwrite the first one's note)."""
    note = (note or "").strip()
    if not note:
        raise FlagError("note_required")
    session.flush()
    done = session.connection().execute(
        update(Flag).where(Flag.id == flag.id, Flag.acknowledged_at.is_(None))
        .values(acknowledged_by=staff_id, acknowledged_at=now, ack_note=note[:500])
        .returning(Flag.id)).first()
    if done is None:
        session.refresh(flag)
        raise FlagError("already_acknowledged")
    session.refresh(flag)
    audit.record(session, actor=f"staff:{staff_id}", action="flag_acknowledged", entity="Flag",
                 entity_id=flag.id, site_id=flag.site_id, participant_id=flag.participant_id, at=now,
                 reason=flag.ack_note, before={"acknowledged_at": None},
                 after={"kind": flag.kind, "acknowledged_at": now})
    return flag


QUEUE_LIMIT = 500


def queue(session: Session, site_ids: frozenset[int] | None, *, show: str = "open", kind: str | None = None,
          limit: int = QUEUE_LIMIT) -> list[tuple[Flag, Participant | None]]:
    """The flag queue of the sites in `site_ids` (None: every site), ordered in SQL before the limit
    (issue 9, problem 7): open flags first, danger and urgent counts before the rest, oldest open
    first; then the history (`show="all"`), newest first."""
    query = select(Flag, Participant).join(Participant, Flag.participant_id == Participant.id, isouter=True)
    if site_ids is not None:
        query = query.where(Flag.site_id.in_(sorted(site_ids)))
    if kind:
        query = query.where(Flag.kind == kind)
    if show == "open":
        query = query.where(Flag.acknowledged_at.is_(None))
    is_open = Flag.acknowledged_at.is_(None)
    rank = case((Flag.kind == "danger_symptom", 0), (Flag.kind == "urgent_plt", 1), else_=2)
    return list(session.exec(query.order_by(
        case((is_open, 0), else_=1), case((is_open, rank), else_=0),
        case((is_open, Flag.raised_at), else_=None), Flag.id.desc()).limit(limit)).all())
