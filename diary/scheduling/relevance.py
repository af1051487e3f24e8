"""Is a queued message still worth sending at `now`? Asked by the dispatcher just before sending.

A reminder waits in the queue through quiet hours, retries and downtime; in the meantime the
dose may have been logged, the day may be over or the participant may have opted out. Such a
message is dropped, never sent late.
"""

from __future__ import annotations

from datetime import datetime
from enum import Enum

from sqlmodel import Session, select

from diary import reminders, study
from diary.models import DoseDecision, Message, Participant, Site
from diary.scheduling.context import Jobs
from diary.services.course_records import load_record

# Answers to something the person just sent, and messages to staff: no quiet hours, no opt-in.
# An SAE alert names a participant but goes to the on-call phone, whatever the hour or the
# participant's own SMS choice or status.
STAFF_KINDS = frozenset({"danger_alert", "sae_alert", "digest"})
# Asked for a moment ago by the participant (a PIN-reset code): sent whatever the hour or opt-in.
ASKED_FOR_KINDS = frozenset({"pin_reset"})


class Verdict(Enum):
    SEND = "send"
    DROP = "drop"
    WAIT = "wait"


def is_reply(kind: str) -> bool:
    return kind.startswith("reply")


def verdict(session: Session, message: Message, jobs: Jobs, now: datetime) -> tuple[Verdict, object]:
    """(SEND, None), (DROP, reason) or (WAIT, until) for one queued message."""
    if message.expires_at is not None and now >= message.expires_at:
        return Verdict.DROP, "expired"
    if message.kind in STAFF_KINDS or is_reply(message.kind) or message.participant_id is None:
        return Verdict.SEND, None
    # The participant with their site's quiet hours, in the one query the check always took.
    participant, quiet_start, quiet_end = session.exec(
        select(Participant, Site.quiet_start, Site.quiet_end).join(Site, Site.id == Participant.site_id)
        .where(Participant.id == message.participant_id)).one()
    if participant.status != "active":
        return Verdict.DROP, participant.status
    if message.kind in ASKED_FOR_KINDS:
        return Verdict.SEND, None
    if not participant.sms_opt_in:
        return Verdict.DROP, "opted out"
    if message.course_id is not None and message.kind in reminders.REMINDER_KINDS:
        record = load_record(session, message.course_id)
        if record is None or not reminders.still_useful(message.kind, message.course_day, record, jobs.cfg, now):
            return Verdict.DROP, "no longer needed"
    if message.kind == "dose_change" and _overtaken(session, message):
        return Verdict.DROP, "overtaken by a later decision"
    quiet = study.quiet_window(jobs.cfg, quiet_start, quiet_end)
    if study.in_quiet_hours(now, participant.timezone, quiet):
        until = study.quiet_hours_end(now, participant.timezone, quiet)
        if message.expires_at is not None and until >= message.expires_at:
            return Verdict.DROP, "quiet hours last until it expires"
        return Verdict.WAIT, until
    return Verdict.SEND, None


def _overtaken(session: Session, message: Message) -> bool:
    decision_id = int(message.dedupe_key.split(":", 1)[1])
    return session.exec(
        select(DoseDecision.id).where(DoseDecision.course_id == message.course_id,
                                      DoseDecision.id > decision_id).limit(1)
    ).first() is not None
