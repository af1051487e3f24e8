"""Time one planning tick for N active participants on SQLite and PostgreSQL (goal: ≤ 2 s).

    .venv/bin/python bench/tick.py [--participants 10000] [--db sqlite --db postgresql]

Seeds N participants, each on course day 5 with days 1–4 logged, then runs the planning jobs
at 08:00 Shanghai time (every participant's dose reminder falls due: the peak tick) and again at
the same instant (steady state: everything already queued), and prints wall time and the number
of SQL statements. Dispatch is left out: sending is paced by SMS_RATE_PER_SECOND, not by the tick.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
import uuid
from datetime import UTC, date, datetime, timedelta

from sqlalchemy import create_engine, event, insert, text

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from diary import create_app, migrate  # noqa: E402
from diary.crypto import DataCipher  # noqa: E402
from diary.messaging.gateway import ConsoleGateway  # noqa: E402
from diary.models import Course, DoseLog, Participant, Site, StaffUser  # noqa: E402
from diary.scheduling import run_jobs  # noqa: E402
from diary.scheduling.context import Jobs  # noqa: E402

PG_ADMIN = os.environ.get("TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres")
DAY1 = date(2026, 11, 27)
NOW = datetime(2026, 12, 1, 0, 0, tzinfo=UTC)  # 08:00 in Shanghai, course day 5


def seed(engine, n: int, cipher: DataCipher) -> None:
    now = NOW - timedelta(days=5)
    with engine.begin() as conn:
        conn.execute(insert(Site.__table__), [{"code": "B", "name": "Bench", "timezone": "Asia/Shanghai",
                                               "phone": "+8613900000000", "created_at": now}])
        conn.execute(insert(StaffUser.__table__), [{"email": "b@x", "name": "b", "role": "nurse",
                                                    "password_hash": "x", "is_active": True, "failed_logins": 0,
                                                    "auth_version": 1, "created_at": now}])
        phone = cipher.encrypt("+8613800000000")  # one ciphertext: encryption is not what is timed
        conn.execute(insert(Participant.__table__), [
            {"study_number": f"B{i:06d}", "site_id": 1, "cohort": "primary", "language": "zh" if i % 2 else "en",
             "timezone": "Asia/Shanghai", "reminder_time": "08:00", "sms_opt_in": True, "status": "active",
             "phone_enc": phone, "phone_hash": f"{i:064d}", "failed_pins": 0, "auth_version": 1,
             "enrolled_by": 1, "enrolled_at": now} for i in range(1, n + 1)])
        conn.execute(insert(Course.__table__), [
            {"participant_id": i, "cycle_number": 1, "adc_drug": "trastuzumab_deruxtecan",
             "infusion_date": DAY1 - timedelta(days=1), "start_date": DAY1, "starting_dose_mg": 5.0,
             "created_by": 1, "created_at": now} for i in range(1, n + 1)])
        conn.execute(insert(DoseLog.__table__), [
            {"course_id": i, "course_day": day, "outcome": "taken", "source": "participant",
             "taken_at": now + timedelta(days=day), "received_at": now + timedelta(days=day),
             "client_key": f"{i}-{day}"} for i in range(1, n + 1) for day in range(1, 5)])


def timed_tick(app, engine) -> tuple[float, int, dict]:
    statements = [0]

    def count(*_args):
        statements[0] += 1

    event.listen(engine, "before_cursor_execute", count)
    try:
        with app.app_context():
            # batch_size=0: the dispatcher claims nothing; only planning is timed.
            jobs = Jobs.from_app(app, gateway=ConsoleGateway(), batch_size=0)
            started = time.perf_counter()
            summary = run_jobs(engine, jobs, NOW)
            return time.perf_counter() - started, statements[0], summary
    finally:
        event.remove(engine, "before_cursor_execute", count)


def bench(backend: str, n: int) -> None:
    cleanup = None
    if backend == "sqlite":
        url = f"sqlite:///{tempfile.mkdtemp()}/bench.sqlite3"
    else:
        admin = create_engine(PG_ADMIN, isolation_level="AUTOCOMMIT")
        name = f"bench_tick_{uuid.uuid4().hex[:8]}"
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
        url = PG_ADMIN.rsplit("/", 1)[0] + "/" + name

        def cleanup():
            with admin.connect() as conn:
                conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    try:
        app = create_app({"DATABASE_URL": url, "SECRET_KEY": "bench", "DATA_ENCRYPTION_KEY": "bench",
                          "SMS_BACKEND": "console"})
        engine = app.extensions["diary.engine"]
        migrate.upgrade(engine)
        started = time.perf_counter()
        seed(engine, n, DataCipher("bench"))
        seeded = time.perf_counter() - started
        peak, peak_sql, summary = timed_tick(app, engine)
        steady, steady_sql, _ = timed_tick(app, engine)
        print(f"{backend:>10}  {n:>6} participants (seeded in {seeded:.1f}s)  "
              f"peak tick {peak:.2f}s / {peak_sql} SQL statements, queued {summary['reminders']} reminders  "
              f"steady tick {steady:.2f}s / {steady_sql} statements  [{'OK' if max(peak, steady) <= 2 else 'SLOW'}]")
        engine.dispose()
    finally:
        if cleanup:
            cleanup()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--participants", type=int, default=10_000)
    parser.add_argument("--db", action="append", choices=["sqlite", "postgresql"])
    options = parser.parse_args()
    for backend in options.db or ["sqlite", "postgresql"]:
        bench(backend, options.participants)


if __name__ == "__main__":
    main()
