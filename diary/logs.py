"""One logging configuration for every process: gunicorn workers, `flask` commands and the scheduler.

- JSON lines in production (one object a line, for a log shipper), readable text in development
  (LOG_FORMAT overrides either).
- Every line carries the request id (X-Request-ID: a sane inbound one is kept, else a fresh one)
  or, in the scheduler, the tick's id; the response sends it back in the same header.
- The phone-number redaction filter (diary.messaging.gateway) sits on the root handler, so no
  logger anyone adds can print a number. Loggers that print URLs, query strings or request bodies
  (twilio's request log, urllib3) are kept at WARNING, and the development server's request lines
  are dropped: the app writes its own access line, with the route's endpoint and never the raw
  path (paths carry activation tokens, query strings phone numbers).
"""

from __future__ import annotations

import json
import logging
import os
import re
import sys
import time
import traceback
import uuid
from datetime import UTC, datetime

from flask import Flask, g, has_app_context, has_request_context, request

from diary.messaging.gateway import _redact, _RedactPhoneNumbers

access_log = logging.getLogger("diary.access")
REQUEST_ID_HEADER = "X-Request-ID"
# What a proxy or a load balancer sends (a UUID, a hex or base64url string); anything else —
# too long, spaces, newlines that would forge a log line — is replaced by our own id.
_SANE_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:-]{7,127}")
# Loggers that print a URL, a query string or a message body at INFO (urllib3, twilio's request
# log), or only noise (every APScheduler run, Alembic's plugin set-up).
_QUIET = ("urllib3", "twilio", "diary.messaging.gateway.http", "apscheduler", "alembic.runtime.plugins")


class _CurrentStderr(logging.StreamHandler):
    """Writes to whatever sys.stderr is now (pytest and gunicorn replace it after start-up)."""

    @property
    def stream(self):  # type: ignore[override]
        return sys.stderr

    @stream.setter
    def stream(self, _value) -> None:
        pass


class _NoWerkzeugAccessLines(logging.Filter):
    """The development server's per-request lines carry the raw path; ours (diary.access) do not.
    Its other lines ("Running on http://127.0.0.1:5000") stay."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not (record.levelno == logging.INFO and " - - [" in str(record.msg))


def request_id() -> str | None:
    """This request's id (created on first use), the scheduler tick's id, or None."""
    if has_request_context():
        rid = g.get("request_id")
        if rid is None:
            inbound = request.headers.get(REQUEST_ID_HEADER, "")
            rid = inbound if _SANE_ID.fullmatch(inbound) else uuid.uuid4().hex
            g.request_id = rid
        return rid
    if has_app_context():
        return g.get("request_id")
    return None


class _Context(logging.Filter):
    """Adds the request id and the process's role to every record."""

    def __init__(self, process: str) -> None:
        super().__init__()
        self.process = process

    def filter(self, record: logging.LogRecord) -> bool:
        record.request_id = request_id() or "-"
        record.process_role = self.process
        return True


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        line = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "process": getattr(record, "process_role", "-"),
            "pid": record.process,
            "request_id": getattr(record, "request_id", "-"),
            "msg": record.getMessage(),
        }
        for key in ("endpoint", "method", "status", "duration_ms"):
            if hasattr(record, key):
                line[key] = getattr(record, key)
        if record.exc_info:
            line["exc"] = _redact("".join(traceback.format_exception(*record.exc_info)))
        return json.dumps(line, ensure_ascii=False)


class TextFormatter(logging.Formatter):
    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)-7s %(process_role)s [%(request_id)s] %(name)s: %(message)s")

    def formatException(self, ei) -> str:  # noqa: N802 - logging's name
        return _redact(super().formatException(ei))


def configure(app: Flask, process: str | None = None, *, replace: bool = False) -> None:
    """Set up the root logger once per process (create_app calls it; a later call keeps the
    handler unless `replace`). A gunicorn worker finds the handler gunicorn.conf.py gave the master."""
    root = logging.getLogger()
    ours = [h for h in root.handlers if getattr(h, "_diary", False)]
    if replace:
        for old in ours:
            root.removeHandler(old)
        ours = []
    if not ours:
        fmt = app.config.get("LOG_FORMAT") or ("json" if app.config.get("DIARY_ENV") == "production" else "text")
        # basicConfig-style handlers would print each line twice.
        for old in list(root.handlers):
            if type(old) is logging.StreamHandler:
                root.removeHandler(old)
        root.addHandler(build_handler(fmt, process or _guess_process()))
    root.setLevel(app.config.get("LOG_LEVEL", "INFO"))
    for name in _QUIET:
        logging.getLogger(name).setLevel(logging.WARNING)
    werkzeug = logging.getLogger("werkzeug")
    if not any(isinstance(f, _NoWerkzeugAccessLines) for f in werkzeug.filters):
        werkzeug.addFilter(_NoWerkzeugAccessLines())


def build_handler(fmt: str, process: str) -> logging.Handler:
    handler = _CurrentStderr()
    handler._diary = True  # type: ignore[attr-defined]
    handler.setFormatter(JsonFormatter() if fmt == "json" else TextFormatter())
    handler.addFilter(_Context(process))
    handler.addFilter(_RedactPhoneNumbers())
    return handler


def gunicorn_handler() -> logging.Handler:
    """The root handler of a gunicorn master, built from the environment (gunicorn.conf.py)."""
    fmt = os.environ.get("LOG_FORMAT") or ("json" if os.environ.get("DIARY_ENV") == "production" else "text")
    return build_handler(fmt, "web")


def gunicorn_logconfig() -> dict:
    """gunicorn's own lines (start, workers booting, timeouts) through the same root handler.
    Its access log, when asked for with --access-logfile, keeps its own file and format."""
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "root": {"level": os.environ.get("LOG_LEVEL", "INFO").upper(), "handlers": ["diary"]},
        "loggers": {"gunicorn.error": {"level": "INFO", "handlers": [], "propagate": True}},
        "handlers": {"diary": {"()": "diary.logs.gunicorn_handler"}},
        "formatters": {},
    }


def _guess_process() -> str:
    """web (gunicorn, `flask run`), scheduler (`flask scheduler …`) or cli (other commands)."""
    argv = " ".join(sys.argv)
    if "gunicorn" in argv:
        return "web"
    if "scheduler" in sys.argv:
        return "scheduler"
    if "flask" in argv and "run" not in sys.argv:
        return "cli"
    return "web"


def init_app(app: Flask) -> None:
    """The request id and the access line; call before any extension adds its own hooks, so that a
    request refused by one of them (CSRF, rate limit) is still timed and logged."""
    configure(app)
    app.before_request(_start)
    app.after_request(_finish)


def _start() -> None:
    g.request_started = time.perf_counter()
    request_id()


def _finish(response):
    rid = request_id()
    response.headers[REQUEST_ID_HEADER] = rid
    started = g.get("request_started")
    duration = time.perf_counter() - started if started is not None else 0.0
    g.request_duration = duration
    if request.endpoint != "static":
        # The endpoint, never the path: paths carry activation tokens, query strings carry numbers.
        access_log.info("%s %s %s %.1fms", request.method, request.endpoint or "-", response.status_code,
                        duration * 1000, extra={"endpoint": request.endpoint or "-", "method": request.method,
                                                "status": response.status_code,
                                                "duration_ms": round(duration * 1000, 1)})
    return response
