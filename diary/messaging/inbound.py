"""Incoming SMS: what a participant's reply means, and doing it (DESIGN §4).

A reply such as `1` logs a dose through the same use case as the today page
(services.dosing.log_dose), idempotent by the provider's MessageSid; which day it belongs to is
the one rule of course_record.day_for_log. Every answer goes through
the outbox, so it is recorded, rate-limited and retried like any other message.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, select

from diary import audit, course_record, reminders, study
from diary.crypto import DataCipher, InvalidPhone, normalize_phone
from diary.inputs import without_nul
from diary.messaging import texts
from diary.messaging.outbox import enqueue
from diary.models import Course, InboundMessage, Message, Participant, Site
from diary.services import dosing
from diary.services.course_records import load_record
from diary.services.flag_details import detail
from diary.services.flags import raise_flag
from diary.study import StudyConfig

log = logging.getLogger(__name__)

TAKEN = frozenset({"1", "y", "yes", "taken", "已服", "已吃", "已服药"})
# Answers to "which day?" (texts.reply_which_day): they name the day.
TAKEN_TODAY = frozenset({"today", "今天"})
TAKEN_YESTERDAY = frozenset({"yesterday", "昨天"})
# Twilio's standard opt-out and opt-in words, and what mainland carriers expect (退订, TD, T, N).
STOP = frozenset({"stop", "stopall", "unsubscribe", "cancel", "end", "quit", "退订", "td", "t", "n"})
START = frozenset({"start", "unstop", "订阅"})
HELP = frozenset({"help", "info", "帮助"})
# A "taken" reply may add whether the dose was taken on an empty stomach (texts.reply_help says how):
# "1 F" / "1 空腹" yes, "1 NF" / "1 非空腹" no, "1 ?" / "1 不确定" not sure. Longest first: "nf" before "f".
FASTING_WORDS = (("未空腹", "no"), ("非空腹", "no"), ("不空腹", "no"), ("不确定", "unsure"), ("空腹", "yes"),
                 ("nf", "no"), ("f", "yes"), ("?", "unsure"), ("？", "unsure"))
# A reply that arrives an hour late answers a question nobody remembers asking.
REPLY_VALID_FOR = timedelta(hours=1)


def _word(body: str) -> str:
    return "".join(body.split()).strip("。.!！").casefold()


def fasting_in(body: str) -> str | None:
    """The empty-stomach answer a "taken" reply carries ("1 F" → 'yes'), else None."""
    word = _word(body)
    for suffix, answer in FASTING_WORDS:
        if word.endswith(suffix) and word[:-len(suffix)] in TAKEN:
            return answer
    return None


def meaning(body: str) -> str:
    """'taken', 'taken_today', 'taken_yesterday', 'stop', 'start', 'help' or 'other' for a reply,
    whatever its case and spacing."""
    word = _word(body)
    if fasting_in(body) is not None:
        return "taken"
    for name, words in (("taken", TAKEN), ("taken_today", TAKEN_TODAY), ("taken_yesterday", TAKEN_YESTERDAY),
                        ("stop", STOP), ("start", START), ("help", HELP)):
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
    participant = session.exec(select(Participant).where(
        Participant.phone_hash.in_(cipher.lookup_hashes(number)))).first()
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
    elif kind.startswith("taken"):
        named = {"taken_today": 0, "taken_yesterday": -1}.get(kind)
        inbound.handled_as = _log_taken(session, cipher, cfg, participant, sid, now, named, fasting_in(body))
    elif kind == "other" and body.strip():
        inbound.handled_as = _forward_to_staff(session, cipher, participant, sid, body, now)
    else:
        site = session.get(Site, participant.site_id)
        inbound.handled_as = kind
        _reply(session, cipher, participant, sid, texts.reply_help(participant.language, phone=site.phone), now)
    session.add(inbound)
    return inbound.handled_as


def _log_taken(session: Session, cipher: DataCipher, cfg: StudyConfig, participant: Participant,
               sid: str, now: datetime, named: int | None, fasting: str | None = None) -> str:
    """Log a "taken" reply for the day the one rule picks (course_record.day_for_log): the day the
    participant names, else the day the latest reminder asked about if still open, else the only
    open day; when yesterday and today are both open and nothing says which, ask."""
    today = study.local_date(now, participant.timezone)
    course = _course_of(session, participant, today, cfg)
    site = session.get(Site, participant.site_id)
    lang = participant.language
    if course is not None:
        record = load_record(session, course.id)
        today_day = (today - course.start_date).days + 1
        named_day = today_day + named if named is not None else None
        day = course_record.day_for_log(record, cfg, now, named_day=named_day,
                                        asked_day=_asked_day(session, participant, course))
        if isinstance(day, course_record.Ask):
            on = [course.start_date + timedelta(days=d - 1) for d in (day.later, day.earlier)]
            _reply(session, cipher, participant, sid, texts.reply_which_day(lang, today=on[0], yesterday=on[1]), now)
            return "taken_ask_day"
        if day is not None:
            try:
                dosing.log_dose(session, cfg, participant=participant, course_id=course.id, day=day, outcome="taken",
                                client_key=sid[:64], source="sms", now=now, taken_at=now, fasting=fasting)
            except dosing.DoseLogError as exc:
                log.info("SMS dose reply not recorded: %s", exc.code)
            else:
                on = course.start_date + timedelta(days=day - 1)
                body = texts.reply_logged(lang) if on == today else texts.reply_logged_for(lang, day=on)
                _reply(session, cipher, participant, sid, body, now)
                return "taken"
    _reply(session, cipher, participant, sid, texts.reply_nothing_due(lang, phone=site.phone), now)
    return "taken_refused"


def _forward_to_staff(session: Session, cipher: DataCipher, participant: Participant, sid: str,
                      body: str, now: datetime) -> str:
    """A reply that is not a command may be a cry for help ("流鼻血止不住"): staff get it as a flag,
    and the participant is told who reads it and what to do if it is urgent."""
    raise_flag(session, key=f"sms:{sid[:64]}", kind="participant_message", site_id=participant.site_id,
               participant_id=participant.id, now=now, detail=detail("participant_sms", text=body.strip()))
    site = session.get(Site, participant.site_id)
    _reply(session, cipher, participant, sid,
           texts.reply_forwarded(participant.language, phone=site.phone, emergency=site.emergency_phone), now)
    return "other"


def _course_of(session: Session, participant: Participant, today, cfg: StudyConfig) -> Course | None:
    """The course running today, else the one that ran yesterday (its last day may still be open)."""
    for on in (today, today - timedelta(days=1)):
        course = dosing.course_for(session, participant, on, cfg)
        if course is not None and study.course_day_on(course.start_date, on, cfg):
            return course
    return None


def _asked_day(session: Session, participant: Participant, course: Course) -> int | None:
    """The course day the latest dose reminder or follow-up the participant was sent asked about."""
    return session.exec(
        select(Message.course_day).where(Message.participant_id == participant.id, Message.course_id == course.id,
                                         Message.kind.in_(reminders.DOSE_KINDS), Message.sent_at.is_not(None))
        .order_by(Message.sent_at.desc(), Message.id.desc()).limit(1)).first()


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
                   detail=detail("opt_out_sms"))
    return "start" if opt_in else "stop"


def _reply(session: Session, cipher: DataCipher, participant: Participant, sid: str, body: str,
           now: datetime) -> None:
    enqueue(session, cipher, dedupe_key=f"reply:{sid}", kind="reply", site_id=participant.site_id,
            participant_id=participant.id, to=None, to_enc=participant.phone_enc, body=body,
            not_before=now, expires_at=now + REPLY_VALID_FOR, created_at=now)
