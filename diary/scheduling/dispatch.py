"""The outbox dispatcher (DESIGN §4; STYLE: healthchecks' sendalerts).

Each message is claimed with a conditional UPDATE (on PostgreSQL after `FOR UPDATE SKIP
LOCKED`), recorded as "sending" and committed *before* the gateway call, then finished with
another conditional UPDATE. A crash between the provider accepting and our commit leaves a row
"sending"; after SMS_SENDING_TIMEOUT_SECONDS it is reconciled with the provider's own list
(`find_sent`) before anything is resent, so it is neither lost nor sent twice.
"""

from __future__ import annotations

import logging
import random
import threading
import time as time_module
from collections import Counter
from collections.abc import Callable
from datetime import datetime, timedelta

from sqlalchemy import case, or_, update
from sqlmodel import Session, select

from diary import metrics
from diary.messaging.gateway import GatewayError
from diary.messaging.outbox import template_of
from diary.models import Message
from diary.scheduling.context import Jobs
from diary.scheduling.relevance import Verdict, verdict
from diary.services import flag_details
from diary.services.flags import raise_flag

log = logging.getLogger(__name__)
BACKOFF_BASE = timedelta(seconds=30)
BACKOFF_CAP = timedelta(minutes=15)
# A row whose processing raised is left alone this long, so one bad row cannot spin the loop.
BAD_ROW_PAUSE = timedelta(minutes=5)
# Provider and our clocks may disagree a little; reconciliation looks back this much further.
CLOCK_SLACK = timedelta(minutes=2)


class Pacer:
    """At most `rate` sends per second on average (0: no limit), on a monotonic clock.

    Slots are kept on a fixed schedule, so a send that took longer than its slot is made up
    by the next ones (up to `burst` slots) instead of lowering the rate for good; a longer
    stall is forgiven rather than followed by a flood."""

    def __init__(self, rate: float, monotonic: Callable[[], float] = time_module.monotonic,
                 sleep: Callable[[float], None] = time_module.sleep, burst: int = 3) -> None:
        self.interval = 1.0 / rate if rate > 0 else 0.0
        self.burst = burst
        self._monotonic, self._sleep = monotonic, sleep
        self._next: float | None = None

    def wait(self) -> None:
        if not self.interval:
            return
        now = self._monotonic()
        slot = now if self._next is None else max(self._next, now - self.burst * self.interval)
        if slot > now:
            self._sleep(slot - now)
        self._next = slot + self.interval


def backoff(attempts: int, rng: Callable[[], float] = random.random) -> timedelta:
    """Exponential backoff with jitter: half fixed, half random, so retries of a burst spread out."""
    ceiling = min(BACKOFF_BASE * 2 ** max(attempts - 1, 0), BACKOFF_CAP)
    return ceiling / 2 + ceiling / 2 * rng()


def _due(now: datetime):
    return (Message.status == "queued", Message.not_before <= now,
            or_(Message.next_attempt_at.is_(None), Message.next_attempt_at <= now))


def _locked(session: Session, stmt):
    # Two dispatchers on PostgreSQL pass each other's rows by; SQLite runs one dispatcher.
    if session.get_bind().dialect.name == "postgresql":
        return stmt.with_for_update(skip_locked=True)
    return stmt


def _transition(session: Session, message_id: int, was: str, claimed: datetime | None, /,
                **values) -> bool:
    """Move a row on only if it is still as we left it (status `was`, claimed at `claimed`);
    False if another dispatcher took it over."""
    conditions = [Message.id == message_id, Message.status == was]
    if claimed is not None:
        conditions.append(Message.claimed_at == claimed)
    result = session.exec(update(Message).where(*conditions).values(**values))
    session.commit()
    return result.rowcount == 1


class Dispatcher:
    def __init__(self, session: Session, jobs: Jobs, now: datetime, *, pacer: Pacer | None = None,
                 rng: Callable[[], float] = random.random, stop: threading.Event | None = None,
                 max_seconds: float | None = None) -> None:
        self.s, self.jobs, self.now = session, jobs, now
        self.pacer = pacer or Pacer(jobs.rate_per_second)
        self.rng = rng
        self.stop = stop or threading.Event()
        self.deadline = time_module.monotonic() + max_seconds if max_seconds else None
        self.report: Counter[str] = Counter()

    def stamp(self) -> datetime:
        return self.jobs.clock() if self.jobs.clock else self.now

    def _should_stop(self, handled: int) -> bool:
        return (self.stop.is_set() or handled >= self.jobs.batch_size
                or (self.deadline is not None and time_module.monotonic() >= self.deadline))

    def run(self) -> Counter[str]:
        """Reconcile rows a crash left "sending", then send due rows until none is left."""
        handled = 0
        while not self._should_stop(handled) and self._reconcile_one():
            handled += 1
        while not self._should_stop(handled):
            message = self._next()
            if message is None:
                break
            handled += 1
            try:
                if self._handle(message) == "unreachable":
                    break  # the provider cannot be reached: leave the rest for the next tick
            except Exception:
                # STYLE (healthchecks): one bad row must not crash-loop the dispatcher.
                log.exception("message %s could not be dispatched; retrying in %s", message.id, BAD_ROW_PAUSE)
                self.report["errors"] += 1
                self.s.rollback()
                self.s.exec(update(Message).where(Message.id == message.id, Message.status == "queued")
                            .values(next_attempt_at=self.now + BAD_ROW_PAUSE,
                                    last_error="internal error while dispatching"))
                self.s.commit()
        return self.report

    def _next(self) -> Message | None:
        urgent_first = case((Message.kind.in_(("danger_alert", "sae_alert")), 0), else_=1)
        stmt = select(Message).where(*_due(self.now)).order_by(urgent_first, Message.not_before,
                                                               Message.id).limit(1)
        return self.s.exec(_locked(self.s, stmt).execution_options(populate_existing=True)).first()

    def _handle(self, message: Message) -> str:
        decision, detail = verdict(self.s, message, self.jobs, self.now)
        if decision is Verdict.DROP:
            _transition(self.s, message.id, "queued", None, status="dropped", last_error=detail)
            self.report["dropped"] += 1
            return "dropped"
        if decision is Verdict.WAIT:
            _transition(self.s, message.id, "queued", None, next_attempt_at=detail)
            self.report["held"] += 1
            return "held"
        to = self.jobs.cipher.decrypt(message.to_enc)
        template = template_of(message)
        claimed_at = self.stamp()
        # Record before sending (healthchecks): after a crash from here on, the row says so.
        if not _transition(self.s, message.id, "queued", None, status="sending", claimed_at=claimed_at,
                           attempted_at=claimed_at, attempts=message.attempts + 1):
            return "taken"
        self.pacer.wait()
        try:
            provider_id = self.jobs.gateway.send(to, message.body, status_callback=self._callback(message),
                                                 template=template)
        except GatewayError as exc:
            outcome = self._failed(message, claimed_at, exc)
            metrics.count_send(self.jobs.gateway, "uncertain" if outcome == "unreachable" else outcome)
            return outcome
        metrics.count_send(self.jobs.gateway, "sent", provider=getattr(provider_id, "provider", None))
        _transition(self.s, message.id, "sending", claimed_at, status="sent", provider_id=str(provider_id),
                    provider=getattr(provider_id, "provider", None),
                    sent_at=self.stamp(), last_error=None, next_attempt_at=None)
        self.report["sent"] += 1
        return "sent"

    def _callback(self, message: Message) -> str | None:
        # The id lets the status webhook find a row whose provider id is not committed yet.
        base = self.jobs.status_callback
        return f"{base}?m={message.id}" if base else None

    def _failed(self, message: Message, claimed_at: datetime, exc: GatewayError) -> str:
        error = str(exc)[:500]
        if exc.permanent or self.now - message.not_before >= self.jobs.retry_window:
            _transition(self.s, message.id, "sending", claimed_at, status="failed", last_error=error)
            self._flag(message, error)
            self.report["failed"] += 1
            return "failed"
        if exc.status is None and not exc.not_sent:
            # No HTTP answer: the provider may have accepted it. The row stays "sending" and is
            # reconciled with the provider's list before any resend. (A provider that could
            # not be reached at all, not_sent, is simply retried after the backoff.)
            _transition(self.s, message.id, "sending", claimed_at, last_error=error)
            self.report["uncertain"] += 1
            log.warning("message %s: %s; will reconcile before resending", message.id, error)
            return "unreachable"
        _transition(self.s, message.id, "sending", claimed_at, status="queued", last_error=error,
                    next_attempt_at=self.now + backoff(message.attempts + 1, self.rng))
        self.report["retried"] += 1
        return "retry"

    def _flag(self, message: Message, error: str) -> None:
        raise_flag(self.s, key=f"sms_failed:{message.id}", kind="sms_failed", site_id=message.site_id,
                   participant_id=message.participant_id, now=self.now,
                   detail=flag_details.detail("sms_failed", kind=message.kind, error=str(error)))
        self.s.commit()

    def _reconcile_one(self) -> bool:
        stmt = (select(Message).where(Message.status == "sending",
                                      Message.claimed_at <= self.now - self.jobs.sending_timeout)
                .order_by(Message.id).limit(1))
        message = self.s.exec(_locked(self.s, stmt).execution_options(populate_existing=True)).first()
        if message is None:
            return False
        claimed_at = self.stamp()
        template = template_of(message)
        if not _transition(self.s, message.id, "sending", message.claimed_at, claimed_at=claimed_at):
            return True
        try:
            to = self.jobs.cipher.decrypt(message.to_enc)
            provider_id = self.jobs.gateway.find_sent(to, message.created_at - CLOCK_SLACK, message.body,
                                                      template=template)
        except GatewayError as exc:
            log.warning("message %s: cannot reconcile yet (%s)", message.id, exc)
            self.report["unreconciled"] += 1
            return False  # the provider's list is unreachable: try again next tick
        self.report["reconciled"] += 1
        if provider_id:
            _transition(self.s, message.id, "sending", claimed_at, status="sent", provider_id=str(provider_id),
                        provider=getattr(provider_id, "provider", None), sent_at=claimed_at)
        elif self.now - message.not_before >= self.jobs.retry_window:
            _transition(self.s, message.id, "sending", claimed_at, status="failed",
                        last_error="not accepted by the provider and out of retry time")
            self._flag(message, "not accepted by the provider and out of retry time")
        else:
            # Never reached the provider: it goes back in the queue and is sent in this pass.
            _transition(self.s, message.id, "sending", claimed_at, status="queued", next_attempt_at=None)
        return True


def dispatch(session: Session, jobs: Jobs, now: datetime, **kw) -> Counter[str]:
    """Send what is due at `now`; returns counts (sent, dropped, retried, failed, reconciled, …)."""
    return Dispatcher(session, jobs, now, **kw).run()
