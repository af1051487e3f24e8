"""Times the adherence grid and the flag queue at several study sizes, on SQLite and PostgreSQL.

    .venv/bin/python bench/dashboard.py [--participants 72,500,2000,8000] [--runs 5]
                                        [--backend sqlite --backend postgresql] [--view NAME]

Seeds a fresh database per backend and size (migrated to head) with bulk inserts: every participant
has four 14-day courses (the fourth running), most days logged, three blood counts and one signed
decision per course, an open flag for one in ten and five acknowledged ones each. Each view is timed
twice: straight after the load, with no planner statistics (the state after an import or a
restore), and after ANALYZE. Prints one line per backend, size, state and view: the median time, the
median CPU time of this process (steadier on a shared machine; on PostgreSQL the server's own time
is outside it) and the number of queries. `--view grid` times only the views whose name holds
"grid". PostgreSQL is reached at TEST_POSTGRES_URL (default
postgresql+psycopg://postgres@127.0.0.1:5432/postgres); it is skipped when unreachable.
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import scratch  # noqa: E402  (bench/, on the path as this script's folder)
from sqlalchemy import event, insert, text  # noqa: E402
from sqlmodel import Session  # noqa: E402

from diary import db, migrate, settle, study  # noqa: E402
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
from diary.services import flags  # noqa: E402
from diary.services.adherence import Filters, build_grid, grid_page  # noqa: E402

NOW = datetime(2027, 3, 1, 1, 0, tzinfo=UTC)  # 09:00 in Shanghai


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
        open_flags = [{"key": f"f{i}", "kind": "missed_dose", "site_id": 1, "participant_id": i,
                       "detail": "x", "raised_at": NOW} for i in range(1, participants + 1, 10)]
        # The history a queue grows: five acknowledged flags per participant.
        history = [{"key": f"h{i}:{n}", "kind": "missed_dose", "site_id": 1, "participant_id": i, "detail": "x",
                    "raised_at": NOW - timedelta(days=n), "acknowledged_at": NOW - timedelta(days=n),
                    "acknowledged_by": 1, "ack_note": "called"} for i in range(1, participants + 1) for n in range(5)]
        # Two statements: an executemany takes its columns from the first row, and the open flags have no
        # acknowledgement (in one, every flag of the history was stored as open).
        conn.execute(insert(Flag), open_flags)
        conn.execute(insert(Flag), history)
    print(f"  seeded {participants} participants, {len(courses)} courses, {len(logs)} dose logs, "
          f"{len(labs)} blood counts, {len(history) + len(open_flags)} flags", flush=True)


def _time(engine, runs: int, job) -> tuple[float, float, int]:
    """Median milliseconds of `job(session)` over `runs` fresh sessions (wall clock, and this
    process's CPU: steadier when other processes share the machine, but without the database
    server's own time on PostgreSQL), and its query count."""
    queries = []

    def count(*_args):
        queries.append(1)

    event.listen(engine, "before_cursor_execute", count)
    timings, cpu = [], []
    try:
        for _ in range(runs):
            queries.clear()
            with Session(engine) as s:
                start, start_cpu = time.perf_counter(), time.process_time()
                job(s)
                timings.append((time.perf_counter() - start) * 1000)
                cpu.append((time.process_time() - start_cpu) * 1000)
    finally:
        event.remove(engine, "before_cursor_execute", count)
    return statistics.median(timings), statistics.median(cpu), len(queries)


VIEWS = {
    # What a nurse opens: the running courses. The page shows one page of rows at once (issue 15:
    # at most 100 ms at 8,000 participants) ...
    "default view, page 1": lambda s, cfg: grid_page(s, cfg, NOW, None, Filters(course_state="running")),
    # ... and fetches the headline figures, the problem list and the draw lists straight after:
    # they count every running course.
    "default view, summary": lambda s, cfg: build_grid(s, cfg, NOW, None, Filters(course_state="running")),
    "all courses, page 1": lambda s, cfg: grid_page(s, cfg, NOW, None),
    # Every course of every participant: the figure issue 9 set (≈230 ms at 2,000 × 4).
    "grid, all courses": lambda s, cfg: build_grid(s, cfg, NOW, None),
    "flag queue, open": lambda s, cfg: flags.queue(s, None, show="open"),
    "flag queue, all": lambda s, cfg: flags.queue(s, None, show="all"),
}


def run(name: str, url: str, participants: int, runs: int, views: dict) -> list[tuple]:
    engine = db.make_engine(url)
    migrate.upgrade(engine)
    seed(engine, participants)
    cfg = study.load_config()
    results = []
    # Both states a real database is in: just after a bulk import or a restore (no statistics yet),
    # and once analysed (autovacuum on PostgreSQL; `PRAGMA optimize` on SQLite).
    for stats in ("none", "ANALYZE"):
        if stats == "ANALYZE":
            with engine.begin() as conn:
                conn.execute(text("ANALYZE"))
        for view, job in views.items():
            median, cpu, queries = _time(engine, runs, lambda s, job=job: job(s, cfg))
            results.append((name, participants, stats, view, median, cpu, queries))
            print(f"  {name:<10} {participants:>6} {stats:<8} {view:<22} {median:>8.0f} ms {cpu:>8.0f} ms "
                  f"{queries:>3} queries", flush=True)
    engine.dispose()
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--participants", default="72,500,2000,8000",
                        help="comma-separated study sizes (participants, four courses each)")
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--backend", action="append", choices=["sqlite", "postgresql"])
    parser.add_argument("--view", help="time only the views whose name holds this")
    args = parser.parse_args()
    views = {name: job for name, job in VIEWS.items() if args.view is None or args.view in name}
    # What wsgi.py and the scheduler do once started: the collector stops re-walking start-up objects.
    settle()
    backends = args.backend or ["sqlite", "postgresql"]
    sizes = [int(n) for n in args.participants.split(",")]
    print(f"  {'database':<10} {'people':>6} {'stats':<8} {'view':<22} {'median':>11} {'its CPU':>11}")
    for backend in backends:
        for size in sizes:
            with scratch.database(backend) as url:
                if url is None:
                    return
                run("SQLite" if backend == "sqlite" else "PostgreSQL", url, size, args.runs, views)


if __name__ == "__main__":
    main()
