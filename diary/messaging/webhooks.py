"""Twilio webhooks: incoming SMS and delivery status (DESIGN §4).

Both verify X-Twilio-Signature against the public URL Twilio called (PUBLIC_BASE_URL + path;
request.url when unset) and answer 403 to anything unsigned or forged, changing nothing. A
valid request always gets the same empty TwiML, whoever sent it: answers go through the outbox,
and the HTTP reply tells nobody whether a number is enrolled.
"""

from __future__ import annotations

import logging

from flask import Blueprint, Response, abort, current_app, request
from sqlmodel import select

from diary import clock, db
from diary.extensions import csrf
from diary.inputs import id_arg, without_nul
from diary.messaging.gateway import twilio_error
from diary.messaging.inbound import handle_inbound
from diary.models import Message
from diary.services.flags import raise_flag

log = logging.getLogger(__name__)
bp = Blueprint("sms", __name__, url_prefix="/sms")
EMPTY_TWIML = '<?xml version="1.0" encoding="UTF-8"?><Response></Response>'
# Later states never go back to earlier ones: callbacks can arrive out of order.
RANK = {"queued": 0, "sending": 1, "sent": 2, "delivered": 3, "undelivered": 3, "failed": 3}
FINAL_FAILURES = ("undelivered", "failed")


def _signed_url() -> str:
    base = current_app.config.get("PUBLIC_BASE_URL")
    if not base:
        return request.url
    query = request.query_string.decode()
    return base + request.path + (f"?{query}" if query else "")


def _verify() -> None:
    token = current_app.config.get("TWILIO_AUTH_TOKEN")
    signature = request.headers.get("X-Twilio-Signature", "")
    if not token or not signature:
        abort(403)
    from twilio.request_validator import RequestValidator  # only Twilio's callbacks need the SDK

    if not RequestValidator(token).validate(_signed_url(), request.form.to_dict(), signature):
        log.warning("webhook %s: signature does not match; refused", request.path)
        abort(403)


def _twiml() -> Response:
    return Response(EMPTY_TWIML, mimetype="text/xml")


@bp.post("/inbound")
@csrf.exempt
def inbound():
    _verify()
    form = request.form
    session = db.session()
    handled = handle_inbound(session, current_app.extensions["diary.cipher"], current_app.extensions["diary.study"],
                             sid=form.get("MessageSid", ""), from_=form.get("From", ""),
                             body=form.get("Body", ""), now=clock.now())
    log.info("inbound SMS handled as %s", handled)
    return _twiml()


@bp.post("/status")
@csrf.exempt
def status():
    _verify()
    form = request.form
    sid, state = without_nul(form.get("MessageSid", "")), form.get("MessageStatus", "")
    session = db.session()
    message = session.exec(select(Message).where(Message.provider_id == sid)).first()
    message_id = request.args.get("m", type=id_arg)
    if message is None and message_id is not None:
        # The callback can beat the dispatcher's commit of the provider id.
        message = session.get(Message, message_id)
        if message is not None and message.provider_id not in (None, sid):
            message = None
    # Always 200 (healthchecks): an error answer would only make Twilio retry or give up.
    if message is None:
        return _twiml()
    code = form.get("ErrorCode")
    error = twilio_error(f"Twilio: delivery {state}", code=int(code) if code and code.isdigit() else None)
    apply_delivery(session, message, state, sid, str(error), clock.now())
    return _twiml()


def apply_delivery(session, message: Message, state: str, provider_id: str | None, error: str,
                   now) -> bool:
    """Record a delivery report (Twilio status callback or a domestic provider's receipt) on its
    message; False when it changes nothing: unknown state, an earlier state than the one recorded
    (reports arrive out of order) or the same state again (providers resend receipts)."""
    if state not in RANK or RANK[state] < RANK.get(message.status, 0) or state == message.status:
        return False
    message.provider_id = message.provider_id or provider_id
    if state == "delivered":
        message.status, message.delivered_at = "delivered", now
    elif state in FINAL_FAILURES:
        if message.status in FINAL_FAILURES:
            return False  # one failure is enough: a second report of another kind changes nothing
        message.status, message.last_error = state, error[:500]
        raise_flag(session, key=f"sms_failed:{message.id}", kind="sms_failed", site_id=message.site_id,
                   participant_id=message.participant_id, now=now,
                   detail=f"SMS ({message.kind}) {state}: {error}")
    elif RANK[state] > RANK.get(message.status, 0):
        message.status = state
    else:
        return False
    session.add(message)
    return True
