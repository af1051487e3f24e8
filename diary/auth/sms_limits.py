"""Limits on the SMS a stranger can trigger through "forgot PIN" (issue 11, item 6).

Twelve anonymous requests sent ten codes to one phone in under a minute: harassment, and the
classic SMS-pumping fraud. Two limits, both counted by the database so that simultaneous
requests cannot overshoot them:
- per phone number: codes issued in the last hour and the last 24 hours, counted while the
  participant's row is held (a row lock), so requests for one number are judged one at a time;
- site-wide: anonymous-triggered SMS per clock hour, one conditional UPDATE on one row.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import case, func, or_, update
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, select

from diary.models import AccessCode, Participant, SmsBudget

ANONYMOUS_SMS = "anonymous_sms"


@dataclass(frozen=True)
class ResetLimits:
    per_hour: int = 3
    per_day: int = 10
    anonymous_sms_per_hour: int = 60


def phone_allows_a_code(session: Session, participant: Participant, now: datetime, limits: ResetLimits) -> bool:
    """Whether another reset code may go to this participant's phone; holds their row until commit."""
    session.exec(update(Participant).where(Participant.id == participant.id)
                 .values(auth_version=Participant.auth_version))

    def issued_since(start: datetime) -> int:
        return session.exec(select(func.count()).select_from(AccessCode).where(
            AccessCode.participant_id == participant.id, AccessCode.purpose == "pin_reset",
            AccessCode.created_at > start)).one()

    return (issued_since(now - timedelta(hours=1)) < limits.per_hour
            and issued_since(now - timedelta(days=1)) < limits.per_day)


def take_anonymous_sms(session: Session, now: datetime, per_hour: int) -> bool:
    """Count one anonymous-triggered SMS against this clock hour's ceiling; False when it is spent."""
    window = now.replace(minute=0, second=0, microsecond=0)
    for _ in range(2):
        taken = session.exec(
            update(SmsBudget)
            .where(SmsBudget.key == ANONYMOUS_SMS,
                   or_(SmsBudget.window_start != window, SmsBudget.used < per_hour))
            .values(used=case((SmsBudget.window_start == window, SmsBudget.used + 1), else_=1),
                    window_start=window)
            .returning(SmsBudget.used)
        ).first()
        if taken is not None:
            return True
        if session.get(SmsBudget, ANONYMOUS_SMS) is not None:
            return False
        try:
            with session.begin_nested():
                session.add(SmsBudget(key=ANONYMOUS_SMS, window_start=window, used=0))
        except IntegrityError:
            pass  # created a moment ago by a concurrent request: count against it
    return False
