"""The scheduler process (DESIGN §4). Its jobs are domain functions of (session, now).

Until the reminders issue lands, a tick only reports what is pending; nothing is sent.
"""

from __future__ import annotations

import logging
import signal
from collections.abc import Iterator
from datetime import datetime

from flask import Flask
from sqlmodel import Session, func, select

from diary import db
from diary.models import Message
from diary.sqltypes import utc_now

log = logging.getLogger(__name__)


def tick(app: Flask, now: datetime) -> Iterator[str]:
    """Run each job once at `now` and describe what it did."""
    with app.app_context(), Session(db.engine()) as s:
        due = s.exec(
            select(func.count()).select_from(Message)
            .where(Message.status == "queued", Message.not_before <= now)
        ).one()
        yield f"{now.isoformat()}: {due} queued message(s) due; dispatch is not built yet (issue 5)."


def run(app: Flask, interval_seconds: int = 60) -> None:
    """Run ticks every minute in this process until SIGTERM or Ctrl-C."""
    from apscheduler.schedulers.blocking import BlockingScheduler

    scheduler = BlockingScheduler(timezone="UTC")
    scheduler.add_job(lambda: [log.info(line) for line in tick(app, utc_now())],
                      "interval", seconds=interval_seconds, coalesce=True, max_instances=1,
                      next_run_time=utc_now())

    def stop(_signo, _frame):
        # Finish the job under way, then exit (healthchecks' sendalerts does the same).
        scheduler.shutdown(wait=True)

    signal.signal(signal.SIGTERM, stop)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s scheduler %(message)s")
    log.info("scheduler started; ticking every %ss", interval_seconds)
    try:
        scheduler.start()
    except (KeyboardInterrupt, SystemExit):
        pass
