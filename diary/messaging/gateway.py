"""SMS gateways: one small interface, a Twilio adapter, a console adapter for development, and
fail-over between providers. Tencent Cloud SMS and Alibaba Cloud SMS live in tencent.py and
aliyun.py; the dispatcher sees only this interface.

Provider error codes are mapped to ``GatewayError(permanent=...)`` in each adapter and nowhere else.
"""

from __future__ import annotations

import contextlib
import json
import logging
import re
import sys
import threading
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol, TextIO, runtime_checkable
from urllib.parse import urlsplit

# The Twilio SDK (and requests under it) is imported by the adapter that uses it, not here: every
# web worker imports this module (log redaction, message texts) but never sends an SMS, and the
# SDK costs each worker ~5 MiB (issue 15). Tencent Cloud and Alibaba Cloud do the same (tencent.py,
# aliyun.py are imported only by the gateway factory).

log = logging.getLogger(__name__)


class GatewayError(Exception):
    """A message was not accepted; ``permanent`` says whether a retry could ever succeed.

    ``status`` is the provider's HTTP status when it answered (a definite refusal); None means no
    answer, so the provider may have accepted it (reconcile before resending). ``not_sent`` also
    covers a provider that could not be reached at all (connection refused): fail-over may then
    try the next provider, which it never does after an uncertain send."""

    def __init__(
        self,
        message: str,
        *,
        permanent: bool = False,
        code: int | str | None = None,
        status: int | None = None,
        not_sent: bool = False,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.permanent = permanent
        self.code = code
        self.status = status
        self._not_sent = not_sent

    @property
    def not_sent(self) -> bool:
        """True when the provider definitely did not accept the message."""
        return self._not_sent or self.status is not None

    def __repr__(self) -> str:
        return f"GatewayError({self.message!r}, permanent={self.permanent}, code={self.code}, status={self.status})"


@dataclass(frozen=True)
class TemplateRef:
    """What a template-only provider needs: the template key, its named parameters, the language,
    our reference for the message (sent as OutId / SessionContext, found again when reconciling)
    and when it was last handed to a provider (None before the first attempt)."""

    key: str
    params: Mapping[str, str]
    language: str
    ref: str | None = None
    attempted_at: datetime | None = None


class SentId(str):
    """A provider's message id that also says which provider accepted it."""

    provider: str

    def __new__(cls, value: str, provider: str) -> SentId:
        sent = super().__new__(cls, value)
        sent.provider = provider
        return sent


@runtime_checkable
class Gateway(Protocol):
    def send(self, to: str, body: str, *, status_callback: str | None = None,
             template: TemplateRef | None = None) -> str:
        """Hand one SMS to the provider; return its message id (a SentId) or raise GatewayError.
        Text providers send `body`; template providers send `template`."""
        ...

    def find_sent(self, to: str, since: datetime, body: str, *, template: TemplateRef | None = None) -> str | None:
        """The id of a message with this body (or this template reference) the provider accepted
        for `to` since `since`; GatewayError when the provider cannot tell yet."""
        ...


# --- phone numbers stay out of logs and error texts --------------------------------------

# Numbers with a "+" (also URL-encoded, as in To=%2B86...) however short, since a malformed
# number is still personal data; bare digit runs from 7 on, leaving ports and error codes, and
# leaving digits inside an identifier or a digest (SM3f0123456…, an audit checkpoint's hash).
_PHONE_LIKE = re.compile(r"(?:\+|%2[Bb])\d{3,}|(?<![0-9A-Za-z])\d{7,}(?![0-9A-Za-z])")


def mask_phone(number: str) -> str:
    """The number with everything but its last four digits hidden: '***8000'."""
    digits = re.sub(r"\D", "", number or "")
    return "***" + digits[-4:] if len(digits) > 4 else "****"


def _redact(text: str) -> str:
    return _PHONE_LIKE.sub(lambda match: mask_phone(match.group()), text)


class _RedactPhoneNumbers(logging.Filter):
    """Masks numbers in records of loggers we do not own (twilio's request log, urllib3)."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.msg = _redact(record.getMessage())
        record.args = ()
        return True


def provider_error(provider: str, code: str, message: str, *, permanent: bool, explained: Mapping[str, str],
                   status: int | None = 200) -> GatewayError:
    """A domestic provider's error code as a GatewayError: the adapter decides `permanent` from its
    own codes; a permanent code the adapter knows gets its plain meaning appended."""
    if permanent and code in explained:
        message = f"{message} [{explained[code]}]"
    return GatewayError(_redact(f"{provider}: {code}: {message}"), permanent=permanent, code=code, status=status)


def filed_template_id(template_ids: Mapping[str, Mapping[str, str]], template, provider: str, label: str) -> str:
    """The id `provider` approved for this message's template (SMS_TEMPLATES); a message without a
    template, or a template without an id, is refused for good before anything is sent."""
    if template is None:
        raise GatewayError(f"{label} sends only templates; this message has none", permanent=True, not_sent=True)
    template_id = template_ids.get(template.language, {}).get(template.key)
    if not template_id:
        raise GatewayError(f"SMS template {template.key!r} ({template.language}) has no {provider} template id "
                           "in SMS_TEMPLATES", permanent=True, not_sent=True)
    return template_id


def _redact_logger(name: str) -> logging.Logger:
    logger = logging.getLogger(name)
    if not any(isinstance(f, _RedactPhoneNumbers) for f in logger.filters):
        logger.addFilter(_RedactPhoneNumbers())
    return logger


# --- Twilio ----------------------------------------------------------------------------

# Twilio error codes (https://www.twilio.com/docs/api/errors) that no retry can fix.
# The 300xx codes arrive in delivery-status callbacks rather than on create; they are here
# so that the status webhook asks twilio_error() instead of keeping a list of its own.
PERMANENT_CODES: dict[int, str] = {
    20003: "authentication failed (account SID or auth token)",
    20404: "resource not found",
    21211: "invalid 'To' number",
    21212: "invalid 'From' number",
    21408: "sending to this region is not enabled",
    21602: "message body is required",
    21603: "a 'From' number or messaging service is required",
    21604: "a 'To' number is required",
    21606: "the 'From' number cannot send SMS",
    21608: "trial account: the 'To' number is not verified",
    21610: "the recipient has opted out (STOP)",
    21612: "the 'To' number cannot be reached from this sender",
    21614: "the 'To' number is not a mobile number",
    21617: "message body exceeds 1600 characters",
    30002: "account suspended",
    30004: "message blocked",
    30005: "unknown destination handset",
    30006: "landline or unreachable carrier",
    30007: "filtered by the carrier",
}
# Codes that can clear up by themselves: rate limits, Twilio outages, a handset switched off.
TRANSIENT_CODES = frozenset({20429, 20500, 20503, 30001, 30003, 30008})


def twilio_error(description: str, *, status: int | None = None, code: int | None = None) -> GatewayError:
    """Map a Twilio HTTP status and error code to a GatewayError (also for callback codes)."""
    if code in TRANSIENT_CODES:
        permanent = False
    elif code in PERMANENT_CODES:
        permanent = True
        description = f"{description} [{PERMANENT_CODES[code]}]"
    elif status is None:
        permanent = False
    else:
        # 429 and 5xx are Twilio saying "not now"; any other 4xx will fail the same way again.
        permanent = 400 <= status < 500 and status != 429
    return GatewayError(_redact(description), permanent=permanent, code=code, status=status)


def _as_int(value: Any) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def _page_error(exc: Exception) -> GatewayError:
    # A failed page of a list arrives as a bare TwilioException carrying the raw response.
    response = exc.args[1] if len(exc.args) > 1 else None
    status = getattr(response, "status_code", None)
    code, detail = None, ""
    # An unreadable error body still maps on its HTTP status.
    with contextlib.suppress(AttributeError, TypeError, ValueError):
        payload = json.loads(response.text)
        code, detail = _as_int(payload.get("code")), str(payload.get("message") or "")
    text = f"Twilio: {exc.args[0]}: {detail}" if detail else f"Twilio: {exc.args[0]}"
    return twilio_error(text, status=status, code=code)


class TwilioGateway:
    """Sends through Twilio's Messages API with the official client, or any compatible host."""

    page_size = 50
    # Reconciliation reads at most this many recent messages to one number.
    scan_limit = 200

    def __init__(
        self,
        account_sid: str,
        auth_token: str,
        *,
        from_number: str | None = None,
        messaging_service_sid: str | None = None,
        api_base_url: str | None = None,
        timeout: float = 10.0,
    ) -> None:
        if not account_sid or not auth_token:
            raise ValueError("TwilioGateway needs an account SID and an auth token")
        if not from_number and not messaging_service_sid:
            raise ValueError("TwilioGateway needs a sender: from_number or messaging_service_sid")
        self.from_number = from_number or None
        self.messaging_service_sid = messaging_service_sid or None
        self.timeout = timeout
        from twilio.http.http_client import TwilioHttpClient
        from twilio.rest import Client

        http = TwilioHttpClient(timeout=timeout, logger=_redact_logger(f"{__name__}.http"))
        # urllib3's debug log prints request lines, and list requests carry To= in the query.
        _redact_logger("urllib3.connectionpool")
        self._client = Client(account_sid, auth_token, http_client=http)
        if api_base_url:
            parts = urlsplit(api_base_url)
            if parts.scheme not in ("http", "https") or not parts.netloc:
                raise ValueError(f"TWILIO_API_BASE_URL is not an http(s) URL: {api_base_url!r}")
            # Every Messages request (create, list, next page, fetch) is built from the Api
            # domain's base_url. TWILIO_EDGE/TWILIO_REGION from the environment would
            # rewrite that host into <host>.<edge>.<region>.twilio.com, so they are cleared.
            self._client.api.base_url = api_base_url.rstrip("/")
            self._client.edge = None
            self._client.region = None
        self._messages = self._client.api.v2010.account.messages

    def send(self, to: str, body: str, *, status_callback: str | None = None,
             template: TemplateRef | None = None) -> str:
        sender: dict[str, str] = {}
        if self.messaging_service_sid:
            sender["messaging_service_sid"] = self.messaging_service_sid
        if self.from_number:
            sender["from_"] = self.from_number
        if status_callback:
            sender["status_callback"] = status_callback
        try:
            message = self._messages.create(to=to, body=body, **sender)
        except Exception as exc:  # _error re-raises what it does not map
            # "from None": the original text names the number (error message, URL).
            raise self._error(exc) from None
        log.info("twilio accepted %s for %s (%s)", message.sid, mask_phone(to), message.status)
        return SentId(message.sid, "twilio")

    def find_sent(self, to: str, since: datetime, body: str, *, template: TemplateRef | None = None) -> str | None:
        if since.tzinfo is None:
            raise ValueError("since must be timezone-aware")
        # Twilio's timestamps have whole seconds: a message created at 10:00:00.700 reads
        # 10:00:00, so a `since` of 10:00:00.500 must compare as 10:00:00.
        floor = since.astimezone(UTC).replace(microsecond=0)
        wanted = _same_text(body)
        # No DateSent filter: it works on whole GMT days and leaves out messages still
        # queued (date_sent is null), which are exactly the ones a crash leaves behind.
        try:
            for message in self._messages.stream(to=to, page_size=self.page_size, limit=self.scan_limit):
                created = message.date_created
                if created and created >= floor and _same_text(message.body or "") == wanted:
                    return SentId(message.sid, "twilio")
                # Newest first (by creation or by sending): once a message was sent before
                # `since`, every later one in the list was created before it as well.
                if message.date_sent and message.date_sent < floor:
                    break
        except Exception as exc:
            raise self._error(exc) from None
        return None

    def _error(self, exc: Exception) -> GatewayError:
        import requests
        from twilio.base.exceptions import TwilioException, TwilioRestException, TwilioServiceException

        if isinstance(exc, TwilioRestException):
            return twilio_error(f"Twilio: {exc.msg}", status=exc.status, code=_as_int(exc.code))
        if isinstance(exc, TwilioServiceException):
            text = f"Twilio: {exc.title} {exc.detail or ''}".strip()
            return twilio_error(text, status=exc.status, code=_as_int(exc.code))
        if isinstance(exc, requests.Timeout):
            # The request may have reached Twilio: reconcile with find_sent before resending.
            return GatewayError(f"no answer from Twilio within {self.timeout:g}s; it may have accepted the message")
        if isinstance(exc, requests.RequestException):
            return GatewayError(f"cannot reach Twilio ({type(exc).__name__})")
        if isinstance(exc, TwilioException):
            return _page_error(exc)
        if isinstance(exc, ValueError):  # a 2xx answer that is not the JSON Twilio sends
            return GatewayError(f"unreadable answer from Twilio ({type(exc).__name__})")
        raise exc


# --- development --------------------------------------------------------------------------


def _utc_now() -> datetime:
    return datetime.now(UTC)


class ConsoleGateway:
    """Development gateway: prints each message (number masked) and remembers it in memory."""

    def __init__(self, *, stream: TextIO | None = None, clock: Callable[[], datetime] = _utc_now) -> None:
        self.sent: list[tuple[str, str, str]] = []
        self._sent_at: dict[str, datetime] = {}
        self._stream = stream
        self._clock = clock
        self._lock = threading.Lock()

    def send(self, to: str, body: str, *, status_callback: str | None = None,
             template: TemplateRef | None = None) -> str:
        message_id = f"console-{uuid.uuid4()}"
        with self._lock:
            self.sent.append((to, body, message_id))
            self._sent_at[message_id] = self._clock()
        # sys.stdout is looked up per call so that a redirected stdout is honoured.
        print(f"[sms {message_id} to {mask_phone(to)}] {body}", file=self._stream or sys.stdout)
        log.info("console gateway accepted %s for %s", message_id, mask_phone(to))
        return SentId(message_id, "console")

    def find_sent(self, to: str, since: datetime, body: str, *, template: TemplateRef | None = None) -> str | None:
        if since.tzinfo is None:
            raise ValueError("since must be timezone-aware")
        wanted = _same_text(body)
        with self._lock:
            for sent_to, sent_body, message_id in reversed(self.sent):
                if sent_to == to and self._sent_at[message_id] >= since and _same_text(sent_body) == wanted:
                    return SentId(message_id, "console")
        return None


class FailoverGateway:
    """`SMS_BACKEND=tencent,aliyun`: the next provider is tried only when the one before definitely
    did not accept the message (it refused, or could not be reached at all). After an uncertain
    send the error goes to the dispatcher, which reconciles (with every provider) before resending."""

    def __init__(self, gateways: Sequence[Gateway]) -> None:
        if len(gateways) < 2:
            raise ValueError("fail-over needs at least two providers")
        self.gateways = list(gateways)

    def send(self, to: str, body: str, *, status_callback: str | None = None,
             template: TemplateRef | None = None) -> str:
        for position, gateway in enumerate(self.gateways):
            try:
                return gateway.send(to, body, status_callback=status_callback, template=template)
            except GatewayError as exc:
                if not exc.not_sent or position == len(self.gateways) - 1:
                    raise
                log.warning("%s did not accept a message for %s (%s); trying %s", _name(gateway),
                            mask_phone(to), exc, _name(self.gateways[position + 1]))
        raise AssertionError("unreachable")  # pragma: no cover

    def find_sent(self, to: str, since: datetime, body: str, *, template: TemplateRef | None = None) -> str | None:
        """Found at any provider; None only when every provider says it has none."""
        unsure: GatewayError | None = None
        for gateway in self.gateways:
            try:
                found = gateway.find_sent(to, since, body, template=template)
            except GatewayError as exc:
                unsure = exc
                continue
            if found:
                return found
        if unsure is not None:
            raise unsure
        return None


def _name(gateway: Gateway) -> str:
    return getattr(gateway, "provider", type(gateway).__name__)


BACKENDS = ("console", "twilio", "tencent", "aliyun")


def backends(value: str | None) -> list[str]:
    """SMS_BACKEND as a list of providers in fail-over order ("tencent,aliyun"); ValueError if unknown."""
    names = [part.strip().lower() for part in (value or "console").split(",") if part.strip()] or ["console"]
    unknown = [name for name in names if name not in BACKENDS]
    if unknown:
        raise ValueError(f"SMS_BACKEND may name {', '.join(BACKENDS)}, not {', '.join(unknown)}")
    if len(set(names)) != len(names):
        raise ValueError(f"SMS_BACKEND names a provider twice: {value!r}")
    if len(names) > 1 and "console" in names:
        raise ValueError("SMS_BACKEND=console cannot be combined with a provider")
    return names


def build_gateway(config: Mapping[str, Any]) -> Gateway:
    """The gateway the settings ask for; ValueError when a chosen provider is incomplete."""
    names = backends(config.get("SMS_BACKEND"))
    built = [_build_one(name, config) for name in names]
    return built[0] if len(built) == 1 else FailoverGateway(built)


def _build_one(backend: str, config: Mapping[str, Any]) -> Gateway:
    def setting(key: str) -> str | None:
        value = config.get(key)
        return str(value).strip() or None if value is not None else None

    if backend == "console":
        return ConsoleGateway()
    if backend == "tencent":
        from diary.messaging.tencent import build_tencent

        return build_tencent(config)
    if backend == "aliyun":
        from diary.messaging.aliyun import build_aliyun

        return build_aliyun(config)
    missing = [key for key in ("TWILIO_ACCOUNT_SID", "TWILIO_AUTH_TOKEN") if not setting(key)]
    if missing:
        raise ValueError(f"SMS_BACKEND=twilio needs {' and '.join(missing)}")
    if not setting("TWILIO_FROM") and not setting("TWILIO_MESSAGING_SERVICE_SID"):
        raise ValueError("SMS_BACKEND=twilio needs a sender: TWILIO_FROM or TWILIO_MESSAGING_SERVICE_SID")
    return TwilioGateway(
        setting("TWILIO_ACCOUNT_SID"),
        setting("TWILIO_AUTH_TOKEN"),
        from_number=setting("TWILIO_FROM"),
        messaging_service_sid=setting("TWILIO_MESSAGING_SERVICE_SID"),
        api_base_url=setting("TWILIO_API_BASE_URL"),
        timeout=float(setting("TWILIO_TIMEOUT") or 10.0),
    )


def never_reached(exc: BaseException) -> bool:
    """True when an SDK's network error shows the request never left (connection refused, DNS,
    connect timeout): the provider cannot have accepted it. A read timeout or a connection cut
    after sending is not such a proof. Walks the exception chain the SDKs leave behind."""
    import requests
    import urllib3

    seen: BaseException | None = exc
    for _ in range(10):
        if seen is None:
            return False
        if isinstance(seen, requests.ConnectTimeout | urllib3.exceptions.NewConnectionError):
            return True
        if isinstance(seen, requests.ConnectionError):
            reason = getattr(seen.args[0], "reason", None) if seen.args else None
            return isinstance(reason, urllib3.exceptions.NewConnectionError | urllib3.exceptions.ConnectTimeoutError)
        if isinstance(seen, requests.Timeout):
            return False
        seen = seen.__cause__ or seen.__context__ or getattr(seen, "inner_exception", None)
    return False


def endpoint_parts(url: str | None, setting: str) -> tuple[str, str] | None:
    """(scheme, host[:port]) of a full endpoint URL such as http://127.0.0.1:8030; None if unset."""
    if not url:
        return None
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc or parts.path not in ("", "/"):
        raise ValueError(f"{setting} must be a full URL (scheme, host, port), not {url!r}")
    return parts.scheme, parts.netloc


# --- message text ---------------------------------------------------------------------------

# GSM 03.38 default alphabet (without ESC, 0x1B) and its extension table, whose characters
# take two septets (ESC + char).
GSM7_BASIC = frozenset(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
GSM7_EXTENSION = frozenset("\f^{}\\[~]|€")

# Whitespace that looks like a space (or nothing) but is outside GSM-7. One such character,
# typically a non-breaking space pasted from a word processor or a translation tool, forces
# the whole message into UCS-2, which fits 70 characters per segment instead of 160: the
# reminder costs two or three SMS and may arrive split.
_SPACES = {
    "\u00a0": " ",  # no-break space
    "\u1680": " ",
    **{chr(c): " " for c in range(0x2000, 0x200B)},  # en/em/thin/hair/figure spaces
    "\u202f": " ",  # narrow no-break space (French punctuation, some CJK tools)
    "\u205f": " ",
    "\u3000": " ",  # ideographic space
    "\t": " ",
    "\u2028": "\n",
    "\u2029": "\n",
    "\u200b": "",  # zero-width space
    "\u2060": "",  # word joiner
    "\ufeff": "",  # byte-order mark
}
_SPACES_TABLE = str.maketrans(_SPACES)


def sms_text(body: str) -> str:
    """The body as it should be sent: stripped, lookalike whitespace made plain."""
    return body.translate(_SPACES_TABLE).strip()


def _same_text(body: str) -> str:
    return sms_text(body)


def _segments(units: list[int], single: int, multi: int) -> int:
    if sum(units) <= single:
        return 1
    # A segment never splits an escape pair or a surrogate pair, so pack greedily.
    count, used = 1, 0
    for size in units:
        if used + size > multi:
            count, used = count + 1, 0
        used += size
    return count


def segment_info(body: str) -> tuple[str, int]:
    """('GSM-7' or 'UCS-2', number of SMS segments) for this body; an empty body is one SMS."""
    if all(ch in GSM7_BASIC or ch in GSM7_EXTENSION for ch in body):
        septets = [2 if ch in GSM7_EXTENSION else 1 for ch in body]
        return "GSM-7", _segments(septets, 160, 153)
    code_units = [2 if ord(ch) > 0xFFFF else 1 for ch in body]
    return "UCS-2", _segments(code_units, 70, 67)


__all__ = [
    "ConsoleGateway",
    "FailoverGateway",
    "SentId",
    "TemplateRef",
    "Gateway",
    "GatewayError",
    "TwilioGateway",
    "build_gateway",
    "mask_phone",
    "segment_info",
    "sms_text",
    "twilio_error",
]
