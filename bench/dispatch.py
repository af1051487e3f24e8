"""Dispatch 1,000 messages against the standalone Twilio double at a configured rate, and print
the achieved rate and the number of duplicates (goal: ≥ 95 % of the rate, zero duplicates).

    .venv/bin/python bench/dispatch.py [--messages 1000] [--rate 50] [--db sqlite|postgresql]
                                       [--dispatchers 1]

The double runs as its own process (`python -m tests.fakes.twilio_double`); the dispatcher uses
the real twilio client over HTTP. With --dispatchers N (PostgreSQL) N dispatchers share the
queue through SKIP LOCKED, each paced at --rate / N.
"""

from __future__ import annotations

import argparse
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter
from datetime import UTC, datetime

import requests
from sqlalchemy import create_engine, func, insert, select, text
from sqlmodel import Session

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from diary import create_app, migrate  # noqa: E402
from diary.messaging.gateway import TwilioGateway  # noqa: E402
from diary.models import Message, Site  # noqa: E402
from diary.scheduling.context import Jobs  # noqa: E402
from diary.scheduling.dispatch import dispatch  # noqa: E402
from diary.sqltypes import utc_now  # noqa: E402
from tests.fakes.twilio_double import TEST_ACCOUNT_SID, TEST_AUTH_TOKEN  # noqa: E402

PG_ADMIN = os.environ.get("TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres")


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def start_double() -> tuple[subprocess.Popen, str]:
    port = free_port()
    process = subprocess.Popen([sys.executable, "-m", "tests.fakes.twilio_double", "--port", str(port)],
                               cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 15
    while True:
        try:
            requests.get(f"{url}/_double/messages", timeout=1)
            return process, url
        except requests.ConnectionError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)


def database(backend: str):
    if backend == "sqlite":
        return f"sqlite:///{tempfile.mkdtemp()}/dispatch.sqlite3", None
    admin = create_engine(PG_ADMIN, isolation_level="AUTOCOMMIT")
    name = f"bench_dispatch_{uuid.uuid4().hex[:8]}"
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))

    def drop():
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))

    return PG_ADMIN.rsplit("/", 1)[0] + "/" + name, drop


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--messages", type=int, default=1000)
    parser.add_argument("--rate", type=float, default=20.0, help="messages per second (SMS_RATE_PER_SECOND)")
    parser.add_argument("--db", choices=["sqlite", "postgresql"], default="sqlite")
    parser.add_argument("--dispatchers", type=int, default=1)
    options = parser.parse_args()
    if options.dispatchers > 1 and options.db != "postgresql":
        parser.error("several dispatchers need PostgreSQL (SQLite runs one)")

    double, double_url = start_double()
    url, drop = database(options.db)
    try:
        app = create_app({"DATABASE_URL": url, "SECRET_KEY": "bench", "DATA_ENCRYPTION_KEY": "bench",
                          "SMS_BACKEND": "console"})
        engine = app.extensions["diary.engine"]
        migrate.upgrade(engine)
        cipher = app.extensions["diary.cipher"]
        now = utc_now()
        with engine.begin() as conn:
            conn.execute(insert(Site.__table__), [{"code": "B", "name": "Bench", "timezone": "Asia/Shanghai",
                                                   "phone": "+8613900000000", "created_at": now}])
            conn.execute(insert(Message.__table__), [
                {"dedupe_key": f"bench:{i}", "kind": "notice", "site_id": 1, "to_enc": cipher.encrypt(f"+86139{i:08d}"),
                 "body": f"Bench message {i}", "status": "queued", "not_before": now, "attempts": 0,
                 "created_at": now} for i in range(options.messages)])

        def one_dispatcher() -> None:
            gateway = TwilioGateway(TEST_ACCOUNT_SID, TEST_AUTH_TOKEN, from_number="+15005550006",
                                    api_base_url=double_url)
            with app.app_context(), Session(engine, expire_on_commit=False) as session:
                jobs = Jobs.from_app(app, gateway=gateway, rate_per_second=options.rate / options.dispatchers,
                                     batch_size=options.messages, clock=lambda: datetime.now(UTC))
                dispatch(session, jobs, utc_now())

        started = time.perf_counter()
        workers = [threading.Thread(target=one_dispatcher) for _ in range(options.dispatchers)]
        for worker in workers:
            worker.start()
        for worker in workers:
            worker.join()
        elapsed = time.perf_counter() - started

        with Session(engine) as session:
            statuses = dict(session.exec(select(Message.status, func.count()).group_by(Message.status)).all())
        received = requests.get(f"{double_url}/_double/messages", timeout=30).json()
        copies = Counter((m["to"], m["body"]) for m in received)
        duplicates = sum(n - 1 for n in copies.values())
        sent = statuses.get("sent", 0)
        # n messages paced at r/s span (n - 1) / r seconds from the first send to the last.
        achieved = (sent - 1) / elapsed if elapsed else 0.0
        ok = achieved >= 0.95 * options.rate and duplicates == 0 and sent == options.messages
        print(f"{options.db}, {options.dispatchers} dispatcher(s): {sent}/{options.messages} sent in {elapsed:.2f}s; "
              f"achieved {achieved:.1f}/s of {options.rate:g}/s ({100 * achieved / options.rate:.1f} %); "
              f"provider received {len(received)}, duplicates {duplicates}; outbox {statuses}  "
              f"[{'OK' if ok else 'FAIL'}]")
        engine.dispose()
    finally:
        double.terminate()
        double.wait()
        if drop:
            drop()


if __name__ == "__main__":
    main()
