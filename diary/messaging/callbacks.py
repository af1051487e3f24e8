"""Callbacks of the domestic providers: replies (上行) and delivery receipts (回执), in the payload
shapes Tencent Cloud SMS and Alibaba Cloud SMS document (DESIGN §4, issue 13).

They are not signed like Twilio's: the URL carries SMS_CALLBACK_SECRET (a long random string),
optionally checked against SMS_CALLBACK_ALLOWED_IPS, and anything else gets 403, changing nothing.
Receipts are idempotent (webhooks.apply_delivery); replies go through the one inbound use case
(inbound.handle_inbound), keyed so that a callback delivered twice is handled once. Each report of
a batch is committed as soon as it is handled (db.commit_now): one that fails answers 500, the
provider sends the batch again, and the reports before it are then duplicates, not lost.

    POST /sms/tencent/<secret>/receipt   [{"sid", "report_status", "errmsg", "description", ...}]
    POST /sms/tencent/<secret>/reply     {"nationcode", "mobile", "text", "sign", "time", "extend"}
    POST /sms/aliyun/<secret>/receipt    [{"biz_id", "out_id", "success", "err_code", "err_msg", ...}]
    POST /sms/aliyun/<secret>/reply      [{"phone_number", "content", "sequence_id", "send_time", ...}]
"""

from __future__ import annotations

import hashlib
import ipaddress
import logging
import re
import secrets
from typing import Any

from flask import Blueprint, Response, abort, current_app, jsonify, request
from sqlmodel import Session, select

from diary import clock, db
from diary.extensions import csrf
from diary.inputs import without_nul
from diary.messaging.inbound import handle_inbound
from diary.messaging.webhooks import apply_delivery
from diary.models import Message

log = logging.getLogger(__name__)
bp = Blueprint("sms_cn", __name__, url_prefix="/sms")
_REF = re.compile(r"^diary-(\d{1,18})$")
MAX_ITEMS = 1000  # a batch of reports is at most a few hundred


def _authenticate(secret: str) -> None:
    expected = current_app.config.get("SMS_CALLBACK_SECRET")
    if not expected or not secrets.compare_digest(secret.encode(), expected.encode()):
        log.warning("SMS callback %s: wrong secret; refused", request.path.rsplit("/", 1)[-1])
        abort(403)
    allowed = current_app.config.get("SMS_CALLBACK_ALLOWED_IPS")
    if allowed:
        try:
            address = ipaddress.ip_address(request.remote_addr or "")
            networks = [ipaddress.ip_network(part.strip(), strict=False) for part in allowed.split(",") if part.strip()]
        except ValueError:
            abort(403)
        if not any(address in network for network in networks):
            log.warning("SMS callback from an address outside SMS_CALLBACK_ALLOWED_IPS; refused")
            abort(403)


def _items(payload: Any) -> list[dict]:
    """A JSON array of objects (a single object counts as one), or 400."""
    items = payload if isinstance(payload, list) else [payload]
    if not items or len(items) > MAX_ITEMS or not all(isinstance(item, dict) for item in items):
        abort(400)
    return items


def _text(item: dict, key: str) -> str:
    value = item.get(key)
    return without_nul(str(value)) if value is not None else ""


def _find(session: Session, provider: str, provider_id: str, ref: str | None) -> Message | None:
    if provider_id:
        message = session.exec(select(Message).where(Message.provider_id == provider_id[:64])).first()
        if message is not None and message.provider in (None, provider):
            return message
    match = _REF.match(ref or "")
    if match:
        # Our own reference (OutId): a receipt that beats the commit of the provider's id, or a
        # message found by reconciliation, whose id is the reference.
        message = session.get(Message, int(match.group(1)))
        if message is not None and message.provider in (None, provider) \
                and message.provider_id in (None, provider_id[:64], ref):
            return message
    return None


def _receipt(provider: str, provider_id: str, ref: str | None, delivered: bool, error: str) -> str:
    session = db.session()
    message = _find(session, provider, provider_id, ref)
    if message is None:
        return "unknown"
    changed = apply_delivery(session, message, "delivered" if delivered else "undelivered",
                             provider_id[:64] or None, error, clock.now())
    if changed:
        message.provider = message.provider or provider
        session.add(message)
        db.commit_now()  # one report, one transaction: a later report of the batch cannot undo it
    return "recorded" if changed else "duplicate"


def _reply(provider: str, sid: str, from_: str, body: str) -> str:
    session = db.session()
    handled = handle_inbound(session, current_app.extensions["diary.cipher"], current_app.extensions["diary.study"],
                             sid=sid, from_=from_, body=body, now=clock.now())
    db.commit_now()  # one reply, one transaction: a later reply of the batch cannot undo it
    log.info("%s reply handled as %s", provider, handled)
    return handled


# --- Tencent Cloud SMS ---------------------------------------------------------------------------


def _tencent_ok() -> Response:
    return jsonify({"result": 0, "errmsg": "OK"})


@bp.post("/tencent/<secret>/receipt")
@csrf.exempt
def tencent_receipt(secret: str):
    _authenticate(secret)
    from diary.messaging.tencent import tencent_error

    items = _items(request.get_json(silent=True))
    if not all(_text(item, "sid") for item in items):
        abort(400)  # checked before any change: a bad batch changes nothing
    for item in items:
        delivered = _text(item, "report_status").upper() == "SUCCESS"
        error = "" if delivered else str(tencent_error(_text(item, "errmsg"), _text(item, "description")))
        _receipt("tencent", _text(item, "sid"), None, delivered, error)
    return _tencent_ok()


@bp.post("/tencent/<secret>/reply")
@csrf.exempt
def tencent_reply(secret: str):
    _authenticate(secret)
    items = _items(request.get_json(silent=True))
    if not all(_text(item, "mobile") for item in items):
        abort(400)
    for item in items:
        mobile, text = _text(item, "mobile"), _text(item, "text")
        nation = _text(item, "nationcode") or "86"
        # Tencent sends no id for a reply: the same reply (number, second, text) is the same one.
        digest = hashlib.sha256(f"{nation}|{mobile}|{_text(item, 'time')}|{text}".encode()).hexdigest()
        _reply("tencent", f"tencent:{digest[:48]}", f"+{nation}{mobile}", text)
    return _tencent_ok()


# --- Alibaba Cloud SMS ---------------------------------------------------------------------------


def _aliyun_ok() -> Response:
    return jsonify({"code": 0, "msg": "接收成功"})


@bp.post("/aliyun/<secret>/receipt")
@csrf.exempt
def aliyun_receipt(secret: str):
    _authenticate(secret)
    from diary.messaging.aliyun import aliyun_error

    items = _items(request.get_json(silent=True))
    if not all(_text(item, "biz_id") or _text(item, "out_id") for item in items):
        abort(400)
    for item in items:
        biz_id, out_id = _text(item, "biz_id"), _text(item, "out_id")
        delivered = item.get("success") in (True, "true")
        error = "" if delivered else str(aliyun_error(_text(item, "err_code"), _text(item, "err_msg")))
        _receipt("aliyun", biz_id, out_id or None, delivered, error)
    return _aliyun_ok()


@bp.post("/aliyun/<secret>/reply")
@csrf.exempt
def aliyun_reply(secret: str):
    _authenticate(secret)
    items = _items(request.get_json(silent=True))
    if not all(_text(item, "phone_number") and _text(item, "sequence_id") for item in items):
        abort(400)
    for item in items:
        number, sequence = _text(item, "phone_number"), _text(item, "sequence_id")
        _reply("aliyun", f"aliyun:{sequence}", number, _text(item, "content"))
    return _aliyun_ok()
