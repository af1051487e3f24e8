"""Signed-in devices: a server-side record per session, so that a session can be ended (issue 11, item 9).

A signed cookie alone cannot be taken back: a copy made before sign-out kept working. Each sign-in
now opens a DeviceSession row; the cookie carries a random id (only its hash is stored) inside the
Flask-Login user id, so the remember cookie carries it too; every request checks the row is open.
"""

from __future__ import annotations

import re
import secrets
from datetime import datetime, timedelta
from functools import cache
from typing import NamedTuple

from sqlalchemy import bindparam, update
from sqlalchemy.orm import load_only
from sqlmodel import Session, select

from diary.crypto import token_hash
from diary.models import DeviceSession, Participant, Site, StaffUser

# Writing "last seen" on every request would make each page a write; a few minutes is precise enough.
SEEN_EVERY = timedelta(minutes=5)
_BROWSERS = (("Edg/", "Edge"), ("MicroMessenger", "WeChat"), ("Chrome/", "Chrome"), ("Firefox/", "Firefox"),
             ("Safari/", "Safari"))
_SYSTEMS = (("iPhone", "iPhone"), ("iPad", "iPad"), ("Android", "Android"), ("Windows", "Windows"),
            ("Mac OS X", "Mac"), ("Linux", "Linux"))


def describe(user_agent: str) -> str:
    """'Chrome · Android' from a User-Agent header: enough to recognise a phone, no more."""
    browser = next((name for key, name in _BROWSERS if key in user_agent), "")
    system = next((name for key, name in _SYSTEMS if key in user_agent), "")
    label = " · ".join(part for part in (browser, system) if part)
    return re.sub(r"[^\w ·.-]", "", label)[:120]


def open_session(session: Session, *, now: datetime, user_agent: str, participant_id: int | None = None,
                 staff_id: int | None = None) -> str:
    """Record a sign-in on this device; the token to carry in its cookie."""
    token = secrets.token_urlsafe(24)
    session.add(DeviceSession(token_hash=token_hash(token), participant_id=participant_id, staff_id=staff_id,
                              device=describe(user_agent or ""), created_at=now, last_seen_at=now))
    return token


# What a participant's pages read of their own row on every request. The rest (the phone and PIN
# hashes, the lock-out counters, enrolment and emergency-contact details) is read by the few pages
# that use it, when they read it (one look-up then): a row of 24 columns cost a fifth of the
# sign-in check every request makes (issue 15).
_PARTICIPANT_PAGE_COLUMNS = ("id", "study_number", "site_id", "cohort", "language", "timezone", "reminder_time",
                             "sms_opt_in", "status", "auth_version", "ended_at")


@cache
def _open_query(model: type[Participant] | type[StaffUser]):
    """find_open's statement, built once per model: it runs on every signed-in request, and a
    statement built afresh each time is built and keyed for the compiled cache each time too.
    A device session that has ended, or that is another account's, finds nothing (a device
    session belongs to one account: a participant's or a staff member's, never both)."""
    owner, other = ((DeviceSession.participant_id, DeviceSession.staff_id) if model is Participant
                    else (DeviceSession.staff_id, DeviceSession.participant_id))
    query = select(model, DeviceSession.id, DeviceSession.last_seen_at).join(DeviceSession, owner == model.id)
    if model is Participant:
        # The participant's site comes along: every participant page shows its phone numbers.
        query = query.add_columns(Site).join(Site, Site.id == Participant.site_id).options(
            load_only(*(getattr(Participant, name) for name in _PARTICIPANT_PAGE_COLUMNS)))
    return query.where(model.id == bindparam("pk"), DeviceSession.token_hash == bindparam("token"),
                       DeviceSession.ended_at.is_(None), other.is_(None))


class OpenSession(NamedTuple):
    """A device session find_open found open: its row's id and when it was last used."""

    id: int
    last_seen_at: datetime


def find_open(session: Session, model: type[Participant] | type[StaffUser], pk: int,
              token: str) -> tuple[Participant | StaffUser, OpenSession, Site | None] | None:
    """The account `model` #pk, the device session named by `token` and a participant's site, if that
    session is this account's own and has not ended; None otherwise. One statement (issue 15): it
    runs on every signed-in request."""
    found = session.exec(_open_query(model), params={"pk": pk, "token": token_hash(token)}).first()
    if found is None:
        return None
    return found[0], OpenSession(found[1], found[2]), (found[3] if model is Participant else None)


def seen(session: Session, row: OpenSession, now: datetime) -> None:
    """Note that this device was used now (at most every SEEN_EVERY)."""
    if now - row.last_seen_at > SEEN_EVERY:
        # Committed with the request (a refused request leaves it to the next one).
        session.exec(update(DeviceSession).where(DeviceSession.id == row.id).values(last_seen_at=now))


def end(session: Session, token: str, now: datetime, reason: str = "signed_out") -> None:
    session.exec(update(DeviceSession).where(DeviceSession.token_hash == token_hash(token),
                                             DeviceSession.ended_at.is_(None))
                 .values(ended_at=now, ended_reason=reason))


def end_all(session: Session, now: datetime, reason: str, *, participant_id: int | None = None,
            staff_id: int | None = None) -> int:
    """End every open session of one account (PIN reset, withdrawal, deactivation); how many."""
    owner = (DeviceSession.participant_id == participant_id if participant_id is not None
             else DeviceSession.staff_id == staff_id)
    result = session.exec(update(DeviceSession).where(owner, DeviceSession.ended_at.is_(None))
                          .values(ended_at=now, ended_reason=reason))
    return result.rowcount


def end_other(session: Session, participant_id: int, device_id: int, now: datetime) -> bool:
    """A participant ends one of their own other sessions; False if it is not theirs or already ended."""
    result = session.exec(update(DeviceSession).where(
        DeviceSession.id == device_id, DeviceSession.participant_id == participant_id,
        DeviceSession.ended_at.is_(None)).values(ended_at=now, ended_reason="ended_from_settings"))
    return result.rowcount == 1


def open_sessions(session: Session, participant_id: int) -> list[DeviceSession]:
    return list(session.exec(select(DeviceSession).where(
        DeviceSession.participant_id == participant_id, DeviceSession.ended_at.is_(None))
        .order_by(DeviceSession.last_seen_at.desc())).all())


def current_id(session: Session, token: str) -> int | None:
    return session.exec(select(DeviceSession.id).where(DeviceSession.token_hash == token_hash(token))).first()
