"""The SMS outbox: a message is a row written in the transaction of the change that causes it."""

from __future__ import annotations

import logging
from datetime import datetime

from flask import current_app
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, select

from diary.crypto import DataCipher
from diary.messaging.gateway import Gateway, TemplateRef, build_gateway, sms_text
from diary.messaging.texts import Text
from diary.models import Message

log = logging.getLogger(__name__)


def enqueue(
    session: Session,
    cipher: DataCipher,
    *,
    dedupe_key: str,
    kind: str,
    site_id: int,
    to: str | None,
    body: str,
    not_before: datetime,
    participant_id: int | None = None,
    expires_at: datetime | None = None,
    to_enc: bytes | None = None,
    course_id: int | None = None,
    course_day: int | None = None,
    created_at: datetime | None = None,
) -> Message | None:
    """Queue one message under a unique key; None if that key was queued before (nothing doubles).

    `body` is a texts.Text (its template key, parameters and language are stored with the
    rendered text); a plain string can go only through Twilio or the console.
    `to_enc` takes a number already encrypted with `cipher` (a participant's phone_enc)."""
    if session.exec(select(Message.id).where(Message.dedupe_key == dedupe_key)).first():
        return None
    if to_enc is None:
        if to is None:
            raise ValueError("enqueue needs `to` or `to_enc`")
        to_enc = cipher.encrypt(to)
    message = Message(
        dedupe_key=dedupe_key, kind=kind, site_id=site_id, participant_id=participant_id,
        to_enc=to_enc, body=sms_text(body), not_before=not_before, **template_columns(body),
        expires_at=expires_at, course_id=course_id, course_day=course_day,
        **({"created_at": created_at} if created_at else {}),
    )
    try:
        with session.begin_nested():
            session.add(message)
    except IntegrityError:
        # Another transaction queued the same key between our look and our insert.
        return None
    return message


def template_columns(body: str) -> dict:
    """The outbox columns that record the template a body was rendered from (none for a plain str)."""
    if not isinstance(body, Text):
        return {}
    return {"template": body.key, "template_params": dict(body.params), "language": body.language}


def template_of(message: Message) -> TemplateRef | None:
    """What a template provider needs to send `message`: key, parameters, language and our
    reference for it (OutId / SessionContext), plus when it was last handed to a provider."""
    if not message.template:
        return None
    return TemplateRef(key=message.template, params=dict(message.template_params or {}),
                       language=message.language or "zh", ref=f"diary-{message.id}",
                       attempted_at=message.attempted_at)


def gateway() -> Gateway:
    """The app's gateway, built once from settings (console in development, Twilio in production)."""
    if "diary.gateway" not in current_app.extensions:
        current_app.extensions["diary.gateway"] = build_gateway(current_app.config)
    return current_app.extensions["diary.gateway"]
