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


class SignedInParticipant(NamedTuple):
    """The signed-in participant's own row as their pages read it, as it was when this request
    began: plain values, read-only. A service that changes the participant loads the row itself
    (`session.get(Participant, id)`), in the request's unit of work (issue 15: building the ORM
    object and its site on every request was two fifths of the sign-in check)."""

    id: int
    study_number: str
    site_id: int
    cohort: str
    language: str
    timezone: str
    reminder_time: str
    sms_opt_in: bool
    status: str
    auth_version: int
    ended_at: datetime | None

    @classmethod
    def of(cls, participant: Participant) -> SignedInParticipant:
        return cls(*(getattr(participant, name) for name in cls._fields))


class SiteOfParticipant(NamedTuple):
    """The participant's site as their pages show it: its name and the numbers to call. Read-only;
    a service that needs more of the site (its quiet hours) reads the row."""

    id: int
    name: str
    phone: str
    on_call_phone: str | None
    emergency_phone: str


if SignedInParticipant._fields != _PARTICIPANT_PAGE_COLUMNS or \
        not set(SiteOfParticipant._fields) <= set(Site.__table__.c.keys()):
    raise ImportError("the signed-in participant's or site's columns changed: update auth/devices.py")


@cache
def _open_query(model: type[Participant] | type[StaffUser]):
    """find_open's statement, built once per model: it runs on every signed-in request, and a
    statement built afresh each time is built and keyed for the compiled cache each time too.
    A device session that has ended, or that is another account's, finds nothing (a device
    session belongs to one account: a participant's or a staff member's, never both).
    A participant's is a plain (Core) select of their page's values and their site's: no ORM
    object, no identity map."""
    owner, other = ((DeviceSession.participant_id, DeviceSession.staff_id) if model is Participant
                    else (DeviceSession.staff_id, DeviceSession.participant_id))
    if model is Participant:
        # The participant's site comes along: every participant page shows its phone numbers.
        columns = [getattr(Participant, name) for name in _PARTICIPANT_PAGE_COLUMNS]
        site = [getattr(Site, name) for name in SiteOfParticipant._fields]
        query = select(*columns, DeviceSession.id, DeviceSession.last_seen_at, *site) \
            .select_from(Participant).join(DeviceSession, owner == Participant.id) \
            .join(Site, Site.id == Participant.site_id)
    else:
        query = select(model, DeviceSession.id, DeviceSession.last_seen_at).join(DeviceSession, owner == model.id)
    return query.where(model.id == bindparam("pk"), DeviceSession.token_hash == bindparam("token"),
                       DeviceSession.ended_at.is_(None), other.is_(None))


class OpenSession(NamedTuple):
    """A device session find_open found open: its row's id and when it was last used."""

    id: int
    last_seen_at: datetime


_PAGE = len(_PARTICIPANT_PAGE_COLUMNS)


def find_open(session: Session, model: type[Participant] | type[StaffUser], pk: int, token: str
              ) -> tuple[SignedInParticipant | StaffUser, OpenSession, SiteOfParticipant | None] | None:
    """The account `model` #pk (a participant as SignedInParticipant, a staff member as the ORM
    object), the device session named by `token` and a participant's site, if that session is this
    account's own and has not ended; None otherwise. One statement (issue 15): it runs on every
    signed-in request."""
    params = {"pk": pk, "token": token_hash(token)}
    if model is not Participant:
        found = session.exec(_open_query(model), params=params).first()
        return None if found is None else (found[0], OpenSession(found[1], found[2]), None)
    # Through the session's connection: the request's one transaction, without the ORM's work.
    row = session.connection().execute(_open_query(model), params).first()
    if row is None:
        return None
    return (SignedInParticipant._make(row[:_PAGE]), OpenSession(row[_PAGE], row[_PAGE + 1]),
            SiteOfParticipant._make(row[_PAGE + 2:]))


def seen(session: Session, row: OpenSession, now: datetime) -> None:
    """Note that this device was used now (at most every SEEN_EVERY)."""
    if now - row.last_seen_at > SEEN_EVERY:
        # Committed with the request (a refused request leaves it to the next one); on a @reads_only
        # page (diary/db.py), which has no transaction, as it runs: one statement complete in itself.
        session.exec(update(DeviceSession).where(DeviceSession.id == row.id).values(last_seen_at=now)
                     .execution_options(standalone_write=True))


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
