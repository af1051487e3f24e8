"""Incoming SMS: what a participant's reply means, and doing it (DESIGN §4).

A reply such as `1` logs today's dose through the same use case as the today page
(services.dosing.log_dose), idempotent by the provider's MessageSid. Every answer goes through
the outbox, so it is recorded, rate-limited and retried like any other message.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, select

from diary import audit, study
from diary.crypto import DataCipher, InvalidPhone, normalize_phone
from diary.inputs import without_nul
from diary.messaging import texts
from diary.messaging.outbox import enqueue
from diary.models import InboundMessage, Participant, Site
from diary.services import dosing
from diary.services.flags import raise_flag
from diary.study import StudyConfig

log = logging.getLogger(__name__)

TAKEN = frozenset({"1", "y", "yes", "taken", "已服", "已吃", "已服药"})
# Twilio's standard opt-out and opt-in words, and what Chinese carriers use (退订, TD).
STOP = frozenset({"stop", "stopall", "unsubscribe", "cancel", "end", "quit", "退订", "td"})
START = frozenset({"start", "unstop", "订阅"})
HELP = frozenset({"help", "info", "帮助"})
# A reply that arrives an hour late answers a question nobody remembers asking.
REPLY_VALID_FOR = timedelta(hours=1)


def meaning(body: str) -> str:
    """'taken', 'stop', 'start', 'help' or 'other' for a reply, whatever its case and spacing."""
    word = "".join(body.split()).strip("。.!！").casefold()
    for name, words in (("taken", TAKEN), ("stop", STOP), ("start", START), ("help", HELP)):
        if word in words:
            return name
    return "other"


def handle_inbound(session: Session, cipher: DataCipher, cfg: StudyConfig, *, sid: str, from_: str,
                   body: str, now: datetime) -> str:
    """Record and act on one incoming SMS; returns how it was handled. A MessageSid seen before
    (Twilio retrying the webhook) changes nothing and returns 'duplicate'."""
    # Signed by Twilio, yet PostgreSQL refuses NUL bytes in text: stripped, or every retry fails.
    sid, from_, body = without_nul(sid), without_nul(from_), without_nul(body)
    if session.exec(select(InboundMessage.id).where(InboundMessage.provider_sid == sid)).first():
        return "duplicate"
    try:
        number = normalize_phone(from_)
    except InvalidPhone:
        number = from_
    lookup = cipher.lookup_hash(number)
    participant = session.exec(select(Participant).where(Participant.phone_hash == lookup)).first()
    inbound = InboundMessage(provider_sid=sid[:64], from_hash=lookup, from_enc=cipher.encrypt(number),
                             body=body[:1600], participant_id=participant.id if participant else None,
                             received_at=now)
    try:
        with session.begin_nested():
            session.add(inbound)
    except IntegrityError:
        return "duplicate"  # the same webhook, retried while we were answering the first
    if participant is None:
        # Kept (hashed and encrypted) so staff can spot a participant writing from a new phone;
        # no answer, so the sender learns nothing about who is enrolled.
        inbound.handled_as = "unknown"
        return inbound.handled_as
    kind = meaning(body)
    if kind == "stop":
        inbound.handled_as = _opt(session, participant, False, sid, now)
    elif participant.status != "active":
        inbound.handled_as = "inactive"
    elif kind == "start":
        inbound.handled_as = _opt(session, participant, True, sid, now)
        _reply(session, cipher, participant, sid, texts.reply_opted_in(participant.language), now)
    elif kind == "taken":
        inbound.handled_as = _log_taken(session, cipher, cfg, participant, sid, now)
    elif kind == "other" and body.strip():
        inbound.handled_as = _forward_to_staff(session, cipher, participant, sid, body, now)
    else:
        site = session.get(Site, participant.site_id)
        inbound.handled_as = kind
        _reply(session, cipher, participant, sid, texts.reply_help(participant.language, phone=site.phone), now)
    session.add(inbound)
    return inbound.handled_as


def _log_taken(session: Session, cipher: DataCipher, cfg: StudyConfig, participant: Participant,
               sid: str, now: datetime) -> str:
    today = study.local_date(now, participant.timezone)
    course = dosing.course_for(session, participant, today, cfg)
    day = study.course_day_on(course.start_date, today, cfg) if course else None
    if course is not None and day is not None:
        try:
            dosing.log_dose(session, cfg, participant=participant, course=course, day=day, outcome="taken",
                            client_key=sid[:64], source="sms", now=now, taken_at=now)
        except dosing.DoseLogError as exc:
            log.info("SMS dose reply not recorded: %s", exc.code)
        else:
            _reply(session, cipher, participant, sid, texts.reply_logged(participant.language), now)
            return "taken"
    site = session.get(Site, participant.site_id)
    _reply(session, cipher, participant, sid, texts.reply_nothing_due(participant.language, phone=site.phone),
           now)
    return "taken_refused"


def _forward_to_staff(session: Session, cipher: DataCipher, participant: Participant, sid: str,
                      body: str, now: datetime) -> str:
    """A reply that is not a command may be a cry for help ("流鼻血止不住"): staff get it as a flag,
    and the participant is told who reads it and what to do if it is urgent."""
    raise_flag(session, key=f"sms:{sid[:64]}", kind="participant_message", site_id=participant.site_id,
               participant_id=participant.id, now=now, detail=f'SMS from participant: "{body.strip()}"')
    site = session.get(Site, participant.site_id)
    _reply(session, cipher, participant, sid,
           texts.reply_forwarded(participant.language, phone=site.phone, emergency=site.emergency_phone), now)
    return "other"


def _opt(session: Session, participant: Participant, opt_in: bool, sid: str, now: datetime) -> str:
    before = participant.sms_opt_in
    participant.sms_opt_in = opt_in
    session.add(participant)
    audit.record(session, actor="sms", action="sms_opt_in" if opt_in else "sms_opt_out",
                 entity="Participant", entity_id=participant.id, site_id=participant.site_id,
                 participant_id=participant.id, at=now, before={"sms_opt_in": before},
                 after={"sms_opt_in": opt_in})
    if not opt_in:
        # No SMS answer (nothing after opt-out): Twilio's own opt-out handling confirms it.
        raise_flag(session, key=f"opt_out:{sid}", kind="opt_out", site_id=participant.site_id,
                   participant_id=participant.id, now=now,
                   detail="Participant replied STOP: no more reminder texts")
    return "start" if opt_in else "stop"


def _reply(session: Session, cipher: DataCipher, participant: Participant, sid: str, body: str,
           now: datetime) -> None:
    enqueue(session, cipher, dedupe_key=f"reply:{sid}", kind="reply", site_id=participant.site_id,
            participant_id=participant.id, to=None, to_enc=participant.phone_enc, body=body,
            not_before=now, expires_at=now + REPLY_VALID_FOR, created_at=now)
