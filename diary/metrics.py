"""GET /metrics in Prometheus' text format (issue 14). Counts, durations and ages only.

Two kinds of figures:
- read from the database at each scrape, so they are the same whichever process answers:
  outbox messages by status, open flags by kind, the scheduler's last tick duration and heartbeat age;
- counted in the process that does the work: requests and their latency by endpoint (web workers),
  SMS sends and failures by provider (the scheduler's dispatcher). Without PROMETHEUS_MULTIPROC_DIR
  these are per process: a scrape sees the worker that answered it, and the scheduler's sends are
  not visible. With PROMETHEUS_MULTIPROC_DIR set to one empty directory for gunicorn and the
  scheduler (and emptied at each start), every process writes its counters there and a scrape
  adds them up (prometheus_client's multiprocess mode).

Access: `Authorization: Bearer METRICS_TOKEN`; without a token set, only the machine itself
(127.0.0.1, ::1) is answered, so a proxy in front must not forward /metrics.
"""

from __future__ import annotations

import hmac
import logging
import os
import time

from flask import Blueprint, Flask, Response, abort, current_app, g, request
from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.exposition import choose_encoder
from sqlalchemy import func
from sqlmodel import select

log = logging.getLogger(__name__)
bp = Blueprint("metrics", __name__)
_MULTIPROCESS = bool(os.environ.get("PROMETHEUS_MULTIPROC_DIR"))
# Process counters live in their own registry (not prometheus_client's global one, which also
# collects the Python process and GC figures of whichever worker answers).
PROCESS = CollectorRegistry(auto_describe=True)
REQUESTS = Counter("diary_http_requests", "HTTP requests answered, by endpoint, method and status",
                   ["endpoint", "method", "status"], registry=PROCESS)
LATENCY = Histogram("diary_http_request_duration_seconds", "Time to answer a request, by endpoint",
                    ["endpoint"], registry=PROCESS,
                    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0))
SMS = Counter("diary_sms_sends", "SMS hand-overs to the provider, by provider and outcome "
              "(sent, retry, failed, uncertain)", ["provider", "outcome"], registry=PROCESS)
LOOPBACK = frozenset({"127.0.0.1", "::1", "::ffff:127.0.0.1"})


def provider_name(gateway) -> str:
    """'twilio' for TwilioGateway, or whatever a gateway names itself in `provider`."""
    name = getattr(gateway, "provider", None) or type(gateway).__name__.removesuffix("Gateway")
    return str(name).lower() or "unknown"


def count_send(gateway, outcome: str, provider: str | None = None) -> None:
    """`provider`: the one that accepted the message, where a fail-over gateway says which."""
    SMS.labels(provider or provider_name(gateway), outcome).inc()


def _observe(response):
    started = g.get("request_started")
    endpoint = request.endpoint or "unmatched"  # a 404 names no route: one label for them all
    REQUESTS.labels(endpoint, request.method, str(response.status_code)).inc()
    if started is not None:
        LATENCY.labels(endpoint).observe(time.perf_counter() - started)
    return response


class _Database:
    """Figures read from the database at scrape time (one query each, counts only)."""

    def collect(self):
        from diary import db

        up = GaugeMetricFamily("diary_database_up", "1 when the scrape could read the database")
        try:
            families = list(self._read(db.session()))
        except Exception:  # noqa: BLE001 - the process figures are still worth answering with
            log.exception("metrics: database unavailable")
            # Read-only: end the failed read here, since the scrape still answers 200 (and is committed).
            db.session().rollback()
            up.add_metric([], 0)
            yield up
            return
        up.add_metric([], 1)
        yield up
        yield from families

    def _read(self, s):
        from diary import clock
        from diary.models import Flag, Message
        from diary.scheduling import heartbeat

        outbox = GaugeMetricFamily("diary_outbox_messages", "Messages in the SMS outbox, by status",
                                   labels=["status"])
        for status, count in s.exec(select(Message.status, func.count()).group_by(Message.status)).all():
            outbox.add_metric([status], count)
        yield outbox
        flags = GaugeMetricFamily("diary_open_flags", "Flags not yet acknowledged, by kind", labels=["kind"])
        for kind, count in s.exec(select(Flag.kind, func.count()).where(Flag.acknowledged_at.is_(None))
                                  .group_by(Flag.kind)).all():
            flags.add_metric([kind], count)
        yield flags
        beat = heartbeat.last_beat(s)  # the same row /health and the staff alarm read
        age = GaugeMetricFamily("diary_scheduler_heartbeat_age_seconds",
                                "Seconds since the scheduler's last tick (absent: it never ticked)")
        duration = GaugeMetricFamily("diary_scheduler_tick_duration_seconds", "How long the last tick took")
        if beat is not None:
            age.add_metric([], max((clock.now() - beat.at).total_seconds(), 0.0))
            duration.add_metric([], beat.duration_ms / 1000)
        yield age
        yield duration
        s.rollback()


def _allowed() -> bool:
    token = current_app.config.get("METRICS_TOKEN")
    if token:
        sent = request.headers.get("Authorization", "")
        return hmac.compare_digest(sent.encode(), f"Bearer {token}".encode())
    return request.remote_addr in LOOPBACK


@bp.get("/metrics")
def metrics():
    if not _allowed():
        abort(403)
    registry = CollectorRegistry()
    if _MULTIPROCESS:
        from prometheus_client import multiprocess

        multiprocess.MultiProcessCollector(registry)
    else:
        registry.register(_Process())
    registry.register(_Database())
    # The format the scraper asks for (Prometheus sends Accept; the classic text format otherwise).
    encode, content_type = choose_encoder(request.headers.get("Accept", ""))
    response = Response(encode(registry))
    response.headers["Content-Type"] = content_type
    response.headers["Cache-Control"] = "no-store"
    return response


class _Process:
    def collect(self):
        yield from PROCESS.collect()


def init_app(app: Flask) -> None:
    app.after_request(_observe)
    app.register_blueprint(bp)
