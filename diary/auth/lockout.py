"""Atomic lock-out and one-time consumption: counted and claimed by the database, never in Python.

Read-then-write lost updates under concurrency: twenty wrong PINs at once each read
`failed_pins=0`, each wrote 1, and nothing locked. Here every attempt first counts itself with
one conditional UPDATE … RETURNING on the account row, *before* the secret is checked, and the
same transaction then records the outcome (lock or clear, and its audit event) and commits. The
UPDATE holds the row (PostgreSQL row lock; SQLite's single writer), so attempts on one account are
evaluated one after another: the lock decision uses the counted value, and no attempt is ever
checked against a count that a concurrent one has not yet written.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import or_, update
from sqlmodel import Session

from diary.models import AccessCode, Participant, StaffUser


def _counter(model: type):
    return model.failed_logins if model is StaffUser else model.failed_pins


def claim_attempt(session: Session, account: StaffUser | Participant, now: datetime) -> int | None:
    """Count one sign-in attempt before checking it, holding the account row until the caller
    commits; the attempt's number since the last success or lock, or None if the account is locked."""
    model, counter = type(account), _counter(type(account))
    counted = session.exec(
        update(model)
        .where(model.id == account.id, or_(model.locked_until.is_(None), model.locked_until <= now))
        .values({counter.key: counter + 1, "locked_until": None})
        .returning(counter)
    ).first()
    return None if counted is None else counted[0]


def lock(session: Session, account: StaffUser | Participant, now: datetime, minutes: int) -> datetime:
    """Lock the account (the attempt that used the last slot was wrong) and free the slots."""
    model, counter = type(account), _counter(type(account))
    until = now + timedelta(minutes=minutes)
    session.exec(update(model).where(model.id == account.id).values({counter.key: 0, "locked_until": until}))
    return until


def clear(session: Session, account: StaffUser | Participant) -> None:
    """A right secret: the count starts again."""
    model, counter = type(account), _counter(type(account))
    session.exec(update(model).where(model.id == account.id).values({counter.key: 0, "locked_until": None}))


def uncount(session: Session, account: StaffUser | Participant) -> None:
    """A right secret that is not yet a sign-in (first factor, signature): leave the count as it was."""
    model, counter = type(account), _counter(type(account))
    session.exec(update(model).where(model.id == account.id, counter > 0).values({counter.key: counter - 1}))


def consume_code(session: Session, code_id: int, now: datetime) -> bool:
    """Use a one-time code: True for exactly one caller, however many try at once."""
    won = session.exec(
        update(AccessCode)
        .where(AccessCode.id == code_id, AccessCode.used_at.is_(None), AccessCode.expires_at > now)
        .values(used_at=now)
        .returning(AccessCode.id)
    ).first()
    return won is not None


def count_wrong_code(session: Session, code_id: int, now: datetime, max_failures: int) -> None:
    """A wrong reset code counts against that code; the last allowed wrong guess burns it."""
    session.exec(
        update(AccessCode)
        .where(AccessCode.id == code_id, AccessCode.used_at.is_(None))
        .values(attempts=AccessCode.attempts + 1)
    )
    session.exec(
        update(AccessCode)
        .where(AccessCode.id == code_id, AccessCode.used_at.is_(None), AccessCode.attempts >= max_failures)
        .values(used_at=now)
    )


def claim_totp_step(session: Session, staff: StaffUser, step: int) -> bool:
    """Accept a TOTP time step once: a code seen before (or an older one) is refused, even at once."""
    won = session.exec(
        update(StaffUser)
        .where(StaffUser.id == staff.id,
               or_(StaffUser.totp_last_step.is_(None), StaffUser.totp_last_step < step))
        .values(totp_last_step=step)
        .returning(StaffUser.id)
    ).first()
    return won is not None
