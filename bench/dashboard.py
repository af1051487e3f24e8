"""Times the adherence grid for 2,000 participants × 4 courses on SQLite and PostgreSQL.

    .venv/bin/python bench/dashboard.py [--participants 2000] [--runs 7] [--backend sqlite --backend postgresql]

Seeds a fresh database per backend (migrated to head) with bulk inserts: every participant has four
14-day courses, most days logged, three blood counts and one signed decision per course, and a few
open flags. Prints the median and best time of `build_grid` (every row, all filters off) and the
number of queries it issued. Goal: under 250 ms. PostgreSQL is reached at TEST_POSTGRES_URL
(default postgresql+psycopg://postgres@127.0.0.1:5432/postgres); it is skipped when unreachable.
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sqlalchemy import create_engine, event, insert, text  # noqa: E402
from sqlmodel import Session  # noqa: E402

from diary import db, migrate, study  # noqa: E402
from diary.models import (  # noqa: E402
    Course,
    DoseDecision,
    DoseLog,
    Flag,
    LabResult,
    Participant,
    Site,
    StaffUser,
)
from diary.services.adherence import build_grid  # noqa: E402

NOW = datetime(2027, 3, 1, 1, 0, tzinfo=UTC)  # 09:00 in Shanghai
PG_ADMIN = os.environ.get("TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres")


def seed(engine, participants: int) -> None:
    rng = random.Random(7)
    today = NOW.date()
    with engine.begin() as conn:
        conn.execute(insert(Site), [{"code": "A", "name": "Site A", "phone": "+86-591-0000", "timezone":
                                     "Asia/Shanghai", "created_at": NOW}])
        conn.execute(insert(StaffUser), [{"email": "n@x", "name": "n", "role": "nurse", "password_hash": "x",
                                          "is_active": True, "failed_logins": 0, "auth_version": 1,
                                          "created_at": NOW}])
        conn.execute(insert(Participant), [{
            "study_number": f"P{i:05d}", "site_id": 1, "cohort": "primary" if i % 2 else "secondary",
            "language": "zh", "timezone": "Asia/Shanghai", "reminder_time": "08:00", "sms_opt_in": True,
            "status": "active", "phone_enc": b"x", "phone_hash": f"h{i}", "failed_pins": 0, "auth_version": 1,
            "enrolled_by": 1, "enrolled_at": NOW} for i in range(participants)])
        courses = []
        for p in range(1, participants + 1):
            for cycle in range(1, 5):
                # Cycles every 21 days; the fourth is running today (day 1–14 depending on the participant).
                day1 = today - timedelta(days=21 * (4 - cycle) + p % 14)
                courses.append({"participant_id": p, "cycle_number": cycle, "adc_drug": "other",
                                "infusion_date": day1 - timedelta(days=1), "start_date": day1,
                                "starting_dose_mg": 5.0, "created_by": 1, "created_at": NOW})
        conn.execute(insert(Course), courses)
        logs, labs, decisions = [], [], []
        for course_id, c in enumerate(courses, start=1):
            last = min(14, (today - c["start_date"]).days + 1)
            for day in range(1, last + 1):
                if rng.random() < 0.9:
                    logs.append({"course_id": course_id, "course_day": day, "outcome": "taken",
                                 "source": "participant", "received_at": NOW, "client_key": f"{course_id}:{day}"})
            for day in (7, 10, 14):
                if day <= last:
                    labs.append({"course_id": course_id, "course_day": day, "drawn_on": c["start_date"],
                                 "plt": rng.randint(20, 200), "entered_by": 1, "entered_at": NOW})
            decisions.append({"course_id": course_id, "effective_day": 8, "dose_mg": 7.5, "action": "increase",
                              "decided_by": 1, "signed_at": NOW})
        for chunk in range(0, len(logs), 20000):
            conn.execute(insert(DoseLog), logs[chunk:chunk + 20000])
        conn.execute(insert(LabResult), labs)
        conn.execute(insert(DoseDecision), decisions)
        conn.execute(insert(Flag), [{"key": f"f{i}", "kind": "missed_dose", "site_id": 1, "participant_id": i,
                                     "detail": "x", "raised_at": NOW} for i in range(1, participants + 1, 10)])
    # A bulk load leaves the planner without statistics; in production autovacuum (PostgreSQL) or
    # `PRAGMA optimize` (SQLite) has analysed tables this size long before anyone opens the grid.
    with engine.begin() as conn:
        conn.execute(text("ANALYZE"))
    print(f"  seeded {participants} participants, {len(courses)} courses, {len(logs)} dose logs, "
          f"{len(labs)} blood counts")


def time_grid(engine, runs: int) -> tuple[float, float, int, int]:
    cfg = study.load_config()
    queries = []
    event.listen(engine, "before_cursor_execute", lambda *a: queries.append(1))
    timings = []
    for _ in range(runs):
        queries.clear()
        with Session(engine) as s:
            start = time.perf_counter()
            grid = build_grid(s, cfg, NOW, None)
            timings.append((time.perf_counter() - start) * 1000)
    return statistics.median(timings), min(timings), len(queries), len(grid.rows)


def run(name: str, url: str, participants: int, runs: int) -> None:
    engine = db.make_engine(url)
    migrate.upgrade(engine)
    print(f"{name}:")
    seed(engine, participants)
    median, best, queries, rows = time_grid(engine, runs)
    verdict = "OK" if median < 250 else "OVER GOAL"
    print(f"  build_grid: median {median:.0f} ms, best {best:.0f} ms over {runs} runs; {queries} queries; "
          f"{rows} course rows  [{verdict}: goal < 250 ms]")
    engine.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--participants", type=int, default=2000)
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--backend", action="append", choices=["sqlite", "postgresql"])
    args = parser.parse_args()
    backends = args.backend or ["sqlite", "postgresql"]
    if "sqlite" in backends:
        with tempfile.TemporaryDirectory() as tmp:
            run("SQLite", f"sqlite:///{tmp}/bench.sqlite3", args.participants, args.runs)
    if "postgresql" in backends:
        admin = create_engine(PG_ADMIN, isolation_level="AUTOCOMMIT")
        try:
            with admin.connect() as conn:
                conn.execute(text("SELECT 1"))
        except Exception as exc:  # noqa: BLE001 - report and skip
            print(f"PostgreSQL: skipped ({exc.__class__.__name__}: unreachable at {PG_ADMIN})")
            return
        name = f"diary_bench_{uuid.uuid4().hex[:8]}"
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
        try:
            run("PostgreSQL", PG_ADMIN.rsplit("/", 1)[0] + "/" + name, args.participants, args.runs)
        finally:
            with admin.connect() as conn:
                conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
            admin.dispose()


if __name__ == "__main__":
    main()
