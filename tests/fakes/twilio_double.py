"""A Twilio-compatible test double: a real HTTP server speaking the Messages API.

The official twilio client talks to it unchanged once ``client.api.base_url`` points at
``double.url``; tests then program failures and latency and read what was "sent".

    with TwilioDouble() as double:
        gateway = TwilioGateway(double.account_sid, double.auth_token,
                                from_number="+15005550006", api_base_url=double.url)

Standalone, for development and benchmarks (programmable through /_double/ endpoints):

    python -m tests.fakes.twilio_double --port 8025
"""

from __future__ import annotations

import argparse
import json
import re
import secrets
import threading
from collections import deque
from collections.abc import Callable, Iterable
from datetime import UTC, date, datetime
from email.utils import format_datetime
from typing import Any
from urllib.parse import urlencode

import requests
from twilio.request_validator import RequestValidator
from werkzeug.exceptions import HTTPException
from werkzeug.routing import Map, Rule
from werkzeug.serving import WSGIRequestHandler, make_server
from werkzeug.wrappers import Request, Response

API_VERSION = "2010-04-01"
TEST_ACCOUNT_SID = "AC" + "0" * 24 + "d0ab1e00"
TEST_AUTH_TOKEN = "double-auth-token"

_E164 = re.compile(r"^\+[1-9]\d{6,14}$")
_DEFAULT_CODES = {400: 21211, 401: 20003, 404: 20404, 429: 20429, 500: 20500, 503: 20503}
_ERROR_TEXTS = {
    20003: "Authenticate",
    20404: "The requested resource was not found",
    20429: "Too Many Requests",
    20500: "An internal server error has occurred",
    20503: "Service unavailable",
    21211: "The 'To' number is not a valid phone number.",
    21610: "Attempt to send to unsubscribed recipient",
    21614: "'To' number is not a valid mobile number",
}
_ASCII = re.compile(r"^[\x00-\x7f]*$")


def _now() -> datetime:
    return datetime.now(UTC)


def _rfc2822(moment: datetime | None) -> str | None:
    # The client parses these with email.utils.parsedate, which ignores the offset: keep GMT.
    return format_datetime(moment.astimezone(UTC)) if moment else None


def _error_body(status: int, code: int | None, message: str | None) -> dict[str, Any]:
    code = code if code is not None else _DEFAULT_CODES.get(status, status)
    return {
        "code": code,
        "message": message or _ERROR_TEXTS.get(code, f"Error {code}"),
        "more_info": f"https://www.twilio.com/docs/errors/{code}",
        "status": status,
    }


def _json(payload: Any, status: int = 200) -> Response:
    return Response(json.dumps(payload), status=status, mimetype="application/json")


def _day(value: str) -> date:
    # Twilio filters DateSent by whole GMT days, whether given a date or a datetime.
    return date.fromisoformat(value.strip()[:10])


class _QuietHandler(WSGIRequestHandler):
    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        pass


class TwilioDouble:
    """A threaded HTTP server on 127.0.0.1 that answers like Twilio's Messages API."""

    def __init__(
        self,
        account_sid: str = TEST_ACCOUNT_SID,
        auth_token: str = TEST_AUTH_TOKEN,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        clock: Callable[[], datetime] = _now,
        auto_send: bool = True,
    ) -> None:
        """`auto_send`: accepted messages move to "sent" at once; False keeps them queued."""
        self.account_sid = account_sid
        self.auth_token = auth_token
        self.host = host
        self.port = port
        self.clock = clock
        self.auto_send = auto_send
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._server = None
        self._thread: threading.Thread | None = None
        self._records: list[dict[str, Any]] = []
        self._callbacks: dict[str, str] = {}
        self._failures: deque[tuple[int, int | None, str | None, str | None]] = deque()
        self._rejected: dict[str, tuple[int, int, str | None]] = {}
        self._latency = 0.0
        self._requests: list[tuple[str, str]] = []
        base = f"/{API_VERSION}/Accounts/<account>"
        self._routes = Map(
            [
                Rule(f"{base}/Messages.json", endpoint="messages", methods=["GET", "POST"]),
                Rule(f"{base}/Messages/<sid>.json", endpoint="message", methods=["GET"]),
                Rule("/_double/messages", endpoint="ctl_messages", methods=["GET"]),
                Rule("/_double/reset", endpoint="ctl_reset", methods=["POST"]),
                Rule("/_double/fail", endpoint="ctl_fail", methods=["POST"]),
                Rule("/_double/latency", endpoint="ctl_latency", methods=["POST"]),
            ]
        )

    # --- lifecycle -----------------------------------------------------------------------

    def start(self) -> TwilioDouble:
        self._stopping.clear()
        self._server = make_server(self.host, self.port, self._wsgi, threaded=True, request_handler=_QuietHandler)
        self.port = self._server.port
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.05},  # stop() waits for one poll
            name="twilio-double",
            daemon=True,
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is None:
            return
        self._stopping.set()  # wakes requests sleeping in set_latency()
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)
        self._server = None

    def __enter__(self) -> TwilioDouble:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    @property
    def url(self) -> str:
        """Base URL to give the client (TWILIO_API_BASE_URL), e.g. http://127.0.0.1:8025."""
        return f"http://{self.host}:{self.port}"

    # --- programming it ------------------------------------------------------------------

    def fail_next(
        self,
        n: int = 1,
        status: int = 500,
        code: int | None = None,
        message: str | None = None,
        *,
        method: str | None = None,
    ) -> None:
        """The next `n` API requests (only `method` ones if given) fail with a Twilio error."""
        with self._lock:
            for _ in range(n):
                self._failures.append((status, code, message, method and method.upper()))

    def reject(self, to: str, code: int = 21610, status: int = 400, message: str | None = None) -> None:
        """Every create for `to` fails with this error (21610: the recipient sent STOP)."""
        with self._lock:
            self._rejected[to] = (status, code, message)

    def set_latency(self, seconds: float) -> None:
        """Delay every API answer. The request is processed first, so a client that times
        out has still had its message accepted, as can happen with the real Twilio."""
        with self._lock:
            self._latency = seconds

    def reset(self) -> None:
        with self._lock:
            self._records.clear()
            self._callbacks.clear()
            self._failures.clear()
            self._rejected.clear()
            self._requests.clear()
            self._latency = 0.0

    @property
    def requests(self) -> list[tuple[str, str]]:
        """(method, path?query) of every API request received, oldest first."""
        with self._lock:
            return list(self._requests)

    @property
    def messages(self) -> list[dict[str, Any]]:
        """Accepted messages, oldest first, as Twilio resources plus "status_callback"."""
        with self._lock:
            return [
                {**self._public(record), "status_callback": self._callbacks.get(record["sid"])}
                for record in self._records
            ]

    # --- callbacks Twilio would make -----------------------------------------------------

    def sign(self, url: str, params: dict[str, str]) -> str:
        """X-Twilio-Signature for a form POST to `url`, as Twilio computes it."""
        return RequestValidator(self.auth_token).compute_signature(url, params)

    def status_callback_request(
        self, sid: str, status: str = "delivered", error_code: int | None = None
    ) -> tuple[str, dict[str, str], dict[str, str]]:
        """Move message `sid` to `status`; return (url, form, headers) of its signed callback,
        for tests that post it through a Flask test client instead of over HTTP."""
        with self._lock:
            record = next(r for r in self._records if r["sid"] == sid)
            now = self.clock()
            record.update(status=status, date_updated=_rfc2822(now), error_code=error_code)
            record["date_sent"] = record["date_sent"] or _rfc2822(now)
            record = dict(record)
            url = self._callbacks.get(sid)
        if not url:
            raise LookupError(f"message {sid} was sent without a StatusCallback")
        params = {
            "ApiVersion": API_VERSION,
            "AccountSid": self.account_sid,
            "MessageSid": sid,
            "SmsSid": sid,
            "MessageStatus": status,
            "SmsStatus": status,
            "To": record["to"],
            "From": record["from"] or "",
        }
        if record["messaging_service_sid"]:
            params["MessagingServiceSid"] = record["messaging_service_sid"]
        if error_code is not None:
            params["ErrorCode"] = str(error_code)
        return url, params, {"X-Twilio-Signature": self.sign(url, params)}

    def deliver(self, sid: str, status: str = "delivered", error_code: int | None = None) -> int:
        """POST the signed delivery-status callback for `sid`; returns the HTTP status."""
        url, params, headers = self.status_callback_request(sid, status, error_code)
        return requests.post(url, data=params, headers=headers, timeout=10).status_code

    def inbound_request(
        self, url: str, from_: str, body: str, to: str = "+15005550006"
    ) -> tuple[dict[str, str], dict[str, str]]:
        """(form, headers) of a signed incoming-SMS webhook to `url`."""
        sid = "SM" + secrets.token_hex(16)
        params = {
            "ApiVersion": API_VERSION,
            "AccountSid": self.account_sid,
            "MessageSid": sid,
            "SmsMessageSid": sid,
            "SmsSid": sid,
            "SmsStatus": "received",
            "From": from_,
            "To": to,
            "Body": body,
            "NumMedia": "0",
            "NumSegments": "1",
        }
        return params, {"X-Twilio-Signature": self.sign(url, params)}

    # --- HTTP ----------------------------------------------------------------------------

    def _wsgi(self, environ: dict[str, Any], start_response: Callable) -> Iterable[bytes]:
        request = Request(environ)
        try:
            endpoint, args = self._routes.bind_to_environ(environ).match()
        except HTTPException as exc:
            return _json(_error_body(exc.code, 20404, None), exc.code)(environ, start_response)
        if endpoint.startswith("ctl_"):
            response = getattr(self, f"_{endpoint}")(request)
        else:
            with self._lock:
                self._requests.append((request.method, request.full_path.rstrip("?")))
            response = self._api(request, endpoint, args)
            with self._lock:
                latency = self._latency
            if latency:
                self._stopping.wait(latency)
        return response(environ, start_response)

    def _api(self, request: Request, endpoint: str, args: dict[str, str]) -> Response:
        auth = request.authorization
        if (
            auth is None
            or auth.type != "basic"
            or not secrets.compare_digest(auth.username or "", self.account_sid)
            or not secrets.compare_digest(auth.password or "", self.auth_token)
        ):
            body = _error_body(401, 20003, "Authenticate")
            body["detail"] = "Your AccountSid or AuthToken was incorrect."
            return _json(body, 401)
        if args["account"] != self.account_sid:
            return _json(_error_body(404, 20404, None), 404)
        with self._lock:
            failure = next((f for f in self._failures if f[3] in (None, request.method)), None)
            if failure:
                self._failures.remove(failure)
        if failure:
            status, code, message, _ = failure
            return _json(_error_body(status, code, message), status)
        if endpoint == "message":
            return self._fetch(args["sid"])
        if request.method == "POST":
            return self._create(request.form)
        return self._list(request)

    def _create(self, form: Any) -> Response:
        to, body = form.get("To", ""), form.get("Body")
        sender, service = form.get("From"), form.get("MessagingServiceSid")
        if not to:
            return _json(_error_body(400, 21604, "A 'To' phone number is required."), 400)
        if not _E164.match(to):
            text = f"The 'To' number {to} is not a valid phone number."
            return _json(_error_body(400, 21211, text), 400)
        if not sender and not service:
            text = "A 'From' phone number or MessagingServiceSid is required."
            return _json(_error_body(400, 21603, text), 400)
        if not body:
            return _json(_error_body(400, 21602, "Message body is required."), 400)
        if len(body) > 1600:
            text = "The concatenated message body exceeds the 1600 character limit."
            return _json(_error_body(400, 21617, text), 400)
        with self._lock:
            rejected = self._rejected.get(to)
        if rejected:
            status, code, message = rejected
            return _json(_error_body(status, code, message), status)

        sid = "SM" + secrets.token_hex(16)
        now = self.clock()
        # Rough count; real Twilio reports 0 until a messaging service picks a sender.
        per_segment = (160, 153) if _ASCII.match(body) else (70, 67)
        segments = 1 if len(body) <= per_segment[0] else -(-len(body) // per_segment[1])
        record = {
            "account_sid": self.account_sid,
            "api_version": API_VERSION,
            "body": body,
            "date_created": _rfc2822(now),
            "date_sent": None,
            "date_updated": _rfc2822(now),
            "direction": "outbound-api",
            "error_code": None,
            "error_message": None,
            "from": sender,
            "messaging_service_sid": service,
            "num_media": "0",
            "num_segments": "0" if service and not sender else str(segments),
            "price": None,
            "price_unit": "USD",
            "sid": sid,
            "status": "accepted" if service and not sender else "queued",
            "subresource_uris": {"media": f"{self._base_uri()}/Messages/{sid}/Media.json"},
            "to": to,
            "uri": f"{self._base_uri()}/Messages/{sid}.json",
            "_created": now,
        }
        answer = self._public(record)
        if self.auto_send:
            record.update(status="sent", date_sent=_rfc2822(now))
        with self._lock:
            record["_seq"] = len(self._records)
            self._records.append(record)
            if form.get("StatusCallback"):
                self._callbacks[sid] = form["StatusCallback"]
        return _json(answer, 201)

    def _fetch(self, sid: str) -> Response:
        with self._lock:
            record = next((r for r in self._records if r["sid"] == sid), None)
            answer = self._public(record) if record else None
        if answer is None:
            text = f"The requested resource {self._base_uri()}/Messages/{sid}.json was not found"
            return _json(_error_body(404, 20404, text), 404)
        return _json(answer)

    def _list(self, request: Request) -> Response:
        query = request.args
        try:
            page_size = min(max(int(query.get("PageSize", 50)), 1), 1000)
            page = max(int(query.get("Page", 0)), 0)
            on = _day(query["DateSent"]) if "DateSent" in query else None
            after = _day(query["DateSent>"]) if "DateSent>" in query else None
            before = _day(query["DateSent<"]) if "DateSent<" in query else None
        except ValueError as exc:
            return _json(_error_body(400, 20001, f"Invalid parameter: {exc}"), 400)

        def wanted(record: dict[str, Any]) -> bool:
            if "To" in query and record["to"] != query["To"]:
                return False
            if "From" in query and record["from"] != query["From"]:
                return False
            if on or after or before:
                # Queued messages have no date_sent, so a DateSent filter leaves them out.
                if not record["date_sent"]:
                    return False
                sent = datetime.strptime(record["date_sent"], "%a, %d %b %Y %H:%M:%S %z").date()
                if (on and sent != on) or (after and sent < after) or (before and sent > before):
                    return False
            return True

        with self._lock:
            # Newest first, like Twilio.
            matching = sorted(
                (r for r in self._records if wanted(r)),
                key=lambda r: (r["_created"], r["_seq"]),
                reverse=True,
            )
            found = [self._public(r) for r in matching]
        start = page * page_size
        chunk = found[start : start + page_size]
        filters = [(k, v) for k, v in query.items() if k not in ("Page", "PageSize", "PageToken")]

        def page_uri(number: int) -> str:
            params = [*filters, ("PageSize", page_size), ("Page", number)]
            if number:
                params.append(("PageToken", f"PASM{number * page_size}"))
            return f"{self._base_uri()}/Messages.json?{urlencode(params)}"

        return _json(
            {
                "first_page_uri": page_uri(0),
                "end": start + max(len(chunk) - 1, 0),
                "previous_page_uri": page_uri(page - 1) if page else None,
                "messages": chunk,
                "uri": page_uri(page),
                "page_size": page_size,
                "start": start,
                "next_page_uri": page_uri(page + 1) if start + page_size < len(found) else None,
                "page": page,
            }
        )

    def _base_uri(self) -> str:
        return f"/{API_VERSION}/Accounts/{self.account_sid}"

    @staticmethod
    def _public(record: dict[str, Any]) -> dict[str, Any]:
        return {k: v for k, v in record.items() if not k.startswith("_")}

    # --- control endpoints for the standalone server -------------------------------------

    def _ctl_messages(self, request: Request) -> Response:
        return _json(self.messages)

    def _ctl_reset(self, request: Request) -> Response:
        self.reset()
        return _json({"ok": True})

    def _ctl_fail(self, request: Request) -> Response:
        form = request.form
        code = form.get("code")
        self.fail_next(
            int(form.get("n", 1)),
            status=int(form.get("status", 500)),
            code=int(code) if code else None,
            method=form.get("method") or None,
        )
        return _json({"ok": True})

    def _ctl_latency(self, request: Request) -> Response:
        self.set_latency(float(request.form.get("seconds", 0)))
        return _json({"ok": True})


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Run the Twilio test double.")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8025)
    parser.add_argument("--account-sid", default=TEST_ACCOUNT_SID)
    parser.add_argument("--auth-token", default=TEST_AUTH_TOKEN)
    parser.add_argument("--queued", action="store_true", help="leave messages queued")
    options = parser.parse_args(argv)
    double = TwilioDouble(
        options.account_sid,
        options.auth_token,
        host=options.host,
        port=options.port,
        auto_send=not options.queued,
    ).start()
    print(
        f"Twilio double on {double.url}\n"
        f"  TWILIO_API_BASE_URL={double.url}\n"
        f"  TWILIO_ACCOUNT_SID={double.account_sid}\n"
        f"  TWILIO_AUTH_TOKEN={double.auth_token}\n"
        f"  control: GET /_double/messages, POST /_double/reset, "
        f"POST /_double/fail (n, status, code, method), POST /_double/latency (seconds)",
        flush=True,
    )
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        pass
    finally:
        double.stop()


if __name__ == "__main__":
    main()
