"""The scheduler process (DESIGN §4). Its jobs are domain functions of (session, now).

`tick` runs every job once at an instant (`flask scheduler tick --now …`, tests); `run` is the
long-running process (`flask scheduler run`): APScheduler calls `tick` every
SCHEDULER_INTERVAL_SECONDS, never inside a web worker. Every job derives its work from the
database and writes under unique keys, so any number of ticks at any instants, or two
schedulers at once, lose nothing and send nothing twice.
"""

from __future__ import annotations

import logging
import signal
import threading
import time as time_module
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime

from flask import Flask, g
from sqlalchemy import text
from sqlalchemy.engine import Engine
from sqlmodel import Session

from diary import audit_anchor, db
from diary.scheduling import alerts, heartbeat, planning
from diary.scheduling.context import Jobs
from diary.scheduling.dispatch import dispatch
from diary.sqltypes import utc_now

log = logging.getLogger(__name__)
# Any fixed 64-bit number, distinct from the audit chain's: one planner at a time on PostgreSQL.
PLANNING_LOCK = 0x6469617279_0005


@contextmanager
def planning_lock(engine: Engine) -> Iterator[bool]:
    """Yields whether this process may plan now. Planning twice at once would still double
    nothing (unique keys), but it would do the work twice and race on the same inserts."""
    if engine.dialect.name != "postgresql":
        yield True  # SQLite: one scheduler process by design
        return
    with engine.connect() as conn:
        got = bool(conn.execute(text("SELECT pg_try_advisory_lock(:k)"), {"k": PLANNING_LOCK}).scalar())
        try:
            yield got
        finally:
            if got:
                conn.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": PLANNING_LOCK})
            conn.commit()


def _job(session: Session, summary: dict, name: str, work) -> None:
    try:
        summary[name] = work()
        session.commit()
    except Exception:
        # One failing job must not keep the others (danger alerts, dispatch) from running.
        log.exception("scheduler job %s failed", name)
        session.rollback()
        summary[name] = "error"


def _plan(session: Session, summary: dict, jobs: Jobs, now: datetime) -> None:
    """Reminders and dose flags, batch by batch of running courses (planning.running_batches),
    each batch committed: memory stays that of one batch (two, while the previous one's reminders
    are written) however many participants there are.
    A failing job (or batch) is logged and reported; the others still run."""
    counts = {"courses": 0, "reminders": 0, "flags": 0}
    failed: set[str] = set()
    batches = planning.running_batches(session, jobs, now)

    def plan(running: list[planning.Running]) -> None:
        rows = planning.reminder_rows(session, jobs, now, running)
        session.commit()  # the read ends here: the writer may use a connection of its own
        writer.write(rows)

    def flag(running: list[planning.Running]) -> None:
        counts["flags"] += planning.raise_dose_flags(session, jobs, now, running)

    # On PostgreSQL one batch's reminders are written while the next batch is read (ReminderWriter).
    with planning.ReminderWriter(session) as writer:
        while True:
            try:
                running = next(batches, None)
            except Exception:
                log.exception("scheduler job courses failed")
                session.rollback()
                failed.add("courses")
                break
            if running is None:
                break
            counts["courses"] += len(running)
            for name, work in (("reminders", plan), ("flags", flag)):
                try:
                    work(running)
                    session.commit()
                except Exception:
                    log.exception("scheduler job %s failed", name)
                    session.rollback()
                    failed.add(name)
            del running  # before the next batch is loaded
    counts["reminders"] = writer.inserted
    if writer.failed:
        failed.add("reminders")
    summary.update({name: "error" if name in failed else n for name, n in counts.items()})


def run_jobs(engine: Engine, jobs: Jobs, now: datetime, *, stop: threading.Event | None = None,
             max_dispatch_seconds: float | None = None) -> dict:
    """Every job once at `now`, then a heartbeat row; returns what each job did (counts only)."""
    started = time_module.monotonic()
    summary: dict = {}
    with Session(engine, expire_on_commit=False) as s:
        with planning_lock(engine) as mine:
            if mine:
                _plan(s, summary, jobs, now)
                _job(s, summary, "digests", lambda: alerts.send_digests(s, jobs, now))
            else:
                summary["planning"] = "another scheduler is planning"
        # Outside the lock: an alert is queued under a unique key, and it must not wait.
        _job(s, summary, "alerts", lambda: alerts.send_danger_alerts(s, jobs, now))
        _job(s, summary, "sae_alerts", lambda: alerts.send_sae_alerts(s, jobs, now, jobs.sae_report_hours))
        _job(s, summary, "dispatch", lambda: dict(dispatch(s, jobs, now, stop=stop,
                                                           max_seconds=max_dispatch_seconds)))
        # A signed checkpoint of every audit chain's head, outside the database (diary.audit_anchor).
        _job(s, summary, "audit_checkpoint", lambda: audit_anchor.checkpoint(s, now)["event_count"])
        duration_ms = int((time_module.monotonic() - started) * 1000)
        try:
            heartbeat.record(s, now, duration_ms, summary)
        except Exception:
            log.exception("could not record the scheduler heartbeat")
            s.rollback()
    summary["duration_ms"] = duration_ms
    return summary


def _name_the_tick() -> None:
    g.request_id = f"tick-{uuid.uuid4().hex[:12]}"  # on every log line of this tick (diary.logs)


def tick(app: Flask, now: datetime, **kw) -> Iterator[str]:
    """Run each job once at `now` and describe what it did."""
    with app.app_context():
        _name_the_tick()
        summary = run_jobs(db.engine(), Jobs.from_app(app), now, **kw)
    yield f"{now.isoformat()}: " + ", ".join(f"{key}={value}" for key, value in summary.items())


def run(app: Flask, interval_seconds: int | None = None) -> None:
    """Tick every SCHEDULER_INTERVAL_SECONDS in this process until SIGTERM or Ctrl-C."""
    from apscheduler.schedulers.blocking import BlockingScheduler

    interval = interval_seconds or app.config["SCHEDULER_INTERVAL_SECONDS"]
    stop = threading.Event()

    def job() -> None:
        with app.app_context():
            _name_the_tick()
            # The wall clock stamps claims and sends: a rate-limited batch can outlast a tick.
            jobs = Jobs.from_app(app, clock=utc_now)
            # A long batch yields to the next tick, so a new danger alert never waits behind it.
            summary = run_jobs(db.engine(), jobs, utc_now(), stop=stop,
                               max_dispatch_seconds=max(interval * 4, 30))
        log.info("tick: %s", summary)

    def statistics() -> None:
        with app.app_context():
            try:
                db.refresh_statistics(db.engine())
            except Exception:
                log.exception("could not refresh the planner's statistics")

    scheduler = BlockingScheduler(timezone="UTC")
    scheduler.add_job(job, "interval", seconds=interval, coalesce=True, max_instances=1,
                      next_run_time=utc_now(), id="tick")
    # No page may depend on someone having run ANALYZE after an import or a restore (issue 15).
    scheduler.add_job(statistics, "interval", hours=1, coalesce=True, max_instances=1,
                      next_run_time=utc_now(), id="statistics")

    def shutdown(signo, _frame):
        # Finish the message in hand and the job under way, then exit (healthchecks' sendalerts).
        log.info("signal %s: finishing the current batch", signo)
        stop.set()
        scheduler.shutdown(wait=True)

    signal.signal(signal.SIGTERM, shutdown)
    signal.signal(signal.SIGINT, shutdown)
    # Logging is set up by create_app (diary.logs), as for the web tier.
    log.info("scheduler started; ticking every %ss", interval)
    scheduler.start()
    log.info("scheduler stopped")
