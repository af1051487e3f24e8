"""Time one planning tick for N active participants on SQLite and PostgreSQL (issue 15, item 4:
peak tick at 10,000 ≤ 1 s, growth at most linear; issue 9: ≤ 2 s with the collector on).

    .venv/bin/python bench/tick.py [--participants 1000,10000,50000] [--db sqlite --db postgresql]
                                   [--repeat 3]

For each database and size it seeds N participants once (bulk inserts, then ANALYZE as the
scheduler does at start), each on course day 5 with days 1–4 logged. Then, `--repeat` times, it
copies that database (SQLite: the file; PostgreSQL: CREATE DATABASE … TEMPLATE) and runs a fresh
Python process on the copy, as the scheduler is run (create_app, diary.settle, the collector on):
the planning jobs at 08:00 Shanghai time, when every participant's dose reminder falls due (the
peak tick), then again at the same instant (steady state: everything already queued).

Printed per size and database (medians over the repeats, with the range): wall time and SQL
statements of the peak and the steady tick, their CPU time (the tick process's, plus its PostgreSQL
server processes' read from /proc: a figure that, unlike the wall time, does not grow when other
programs compete for the cores), and the tick process's peak resident memory
(VmHWM, i.e. getrusage's ru_maxrss, of that fresh process, which did nothing but start the app and run the two
ticks; the high-water mark is reset to the current size once the app has started, via
/proc/self/clear_refs, because deriving the keys peaks higher than the app settles: "start" is the
size then, so the difference is what the ticks added).
Dispatch is left out: sending is paced by SMS_RATE_PER_SECOND, not by the tick.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import statistics
import subprocess
import sys
import time
from datetime import UTC, date, datetime, timedelta

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import scratch  # noqa: E402  (bench/, this script's folder)

DAY1 = date(2026, 11, 27)
NOW = datetime(2026, 12, 1, 0, 0, tzinfo=UTC)  # 08:00 in Shanghai, course day 5
CHUNK = 10_000  # rows per INSERT batch while seeding


def _app(url: str):
    from diary import create_app

    return create_app({"DATABASE_URL": url, "SECRET_KEY": "bench", "DATA_ENCRYPTION_KEY": "bench",
                       "SMS_BACKEND": "console"})


def seed(url: str, n: int) -> float:
    """Schema and N participants with a running course; returns the seconds it took."""
    from sqlalchemy import insert

    from diary import db, migrate
    from diary.crypto import DataCipher
    from diary.models import Course, DoseLog, Participant, Site, StaffUser

    app = _app(url)
    engine = app.extensions["diary.engine"]
    logging.getLogger("alembic").setLevel(logging.WARNING)
    migrate.upgrade(engine)
    started = time.perf_counter()
    now = NOW - timedelta(days=5)
    phone = DataCipher("bench").encrypt("+8613800000000")  # one ciphertext: encryption is not timed

    def batches(rows):
        batch = []
        for row in rows:
            batch.append(row)
            if len(batch) == CHUNK:
                yield batch
                batch = []
        if batch:
            yield batch

    with engine.begin() as conn:
        conn.execute(insert(Site.__table__), [{"code": "B", "name": "Bench", "timezone": "Asia/Shanghai",
                                               "phone": "+8613900000000", "created_at": now}])
        conn.execute(insert(StaffUser.__table__), [{"email": "b@x", "name": "b", "role": "nurse",
                                                    "password_hash": "x", "is_active": True, "failed_logins": 0,
                                                    "auth_version": 1, "created_at": now}])
        participants = ({"study_number": f"B{i:06d}", "site_id": 1, "cohort": "primary",
                         "language": "zh" if i % 2 else "en", "timezone": "Asia/Shanghai",
                         "reminder_time": "08:00", "sms_opt_in": True, "status": "active", "phone_enc": phone,
                         "phone_hash": f"{i:064d}", "failed_pins": 0, "auth_version": 1, "enrolled_by": 1,
                         "enrolled_at": now} for i in range(1, n + 1))
        for batch in batches(participants):
            conn.execute(insert(Participant.__table__), batch)
        courses = ({"participant_id": i, "cycle_number": 1, "adc_drug": "trastuzumab_deruxtecan",
                    "infusion_date": DAY1 - timedelta(days=1), "start_date": DAY1, "starting_dose_mg": 5.0,
                    "created_by": 1, "created_at": now} for i in range(1, n + 1))
        for batch in batches(courses):
            conn.execute(insert(Course.__table__), batch)
        logs = ({"course_id": i, "course_day": day, "outcome": "taken", "source": "participant",
                 "taken_at": now + timedelta(days=day), "received_at": now + timedelta(days=day),
                 "client_key": f"{i}-{day}"} for i in range(1, n + 1) for day in range(1, 5))
        for batch in batches(logs):
            conn.execute(insert(DoseLog.__table__), batch)
    db.refresh_statistics(engine, force=True)  # what the scheduler does at start (and hourly)
    engine.dispose()
    return time.perf_counter() - started


def copy_of(backend: str, url: str):
    """A context manager: a fresh copy of the seeded database at `url`."""
    return scratch.database(backend, "bench_tick_copy", template=url)


def peak_rss_kib() -> int:
    """The process's peak resident size: VmHWM (what clear_refs resets; ru_maxrss also keeps the
    peak of threads that have exited), else ru_maxrss."""
    import resource

    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


def child(url: str, profile: str | None) -> None:
    """In a fresh process: start the app as the scheduler does, run the peak and the steady tick,
    print one JSON line."""
    from sqlalchemy import event

    import diary
    from diary.messaging.gateway import ConsoleGateway
    from diary.scheduling import run_jobs
    from diary.scheduling.context import Jobs

    app = _app(url)
    engine = app.extensions["diary.engine"]
    if hasattr(diary, "settle"):
        diary.settle()  # as `flask scheduler run` does
    # Starting the app peaks higher than it settles (key derivation): reset the high-water mark to
    # the current size (Linux), so ru_maxrss below is the peak while ticking.
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
    except OSError:
        pass
    start_kib = peak_rss_kib()

    backends: set[int] = set()  # PostgreSQL server processes of this engine's connections

    @event.listens_for(engine, "connect")
    def remember(dbapi_connection, _record):
        pid = getattr(getattr(dbapi_connection, "info", None), "backend_pid", None)
        if pid:
            backends.add(pid)

    def cpu_seconds() -> float:
        """This process's CPU time plus that of its PostgreSQL backends (same machine): unlike the
        wall time, it does not grow when other programs compete for the cores."""
        total = time.process_time()
        for pid in backends:
            try:
                with open(f"/proc/{pid}/stat") as f:
                    fields = f.read().rsplit(")", 1)[1].split()
                total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime, stime
            except (OSError, IndexError, ValueError):
                pass
        return total

    def timed_tick(profiler=None) -> tuple[float, int, dict, float]:
        statements = [0]

        def count(*_args):
            statements[0] += 1

        event.listen(engine, "before_cursor_execute", count)
        try:
            with app.app_context():
                # batch_size=0: the dispatcher claims nothing; only planning is timed.
                jobs = Jobs.from_app(app, gateway=ConsoleGateway(), batch_size=0)
                if profiler:
                    profiler.enable()
                cpu = cpu_seconds()
                started = time.perf_counter()
                summary = run_jobs(engine, jobs, NOW)
                elapsed = time.perf_counter() - started
                cpu = cpu_seconds() - cpu
                if profiler:
                    profiler.disable()
                return elapsed, statements[0], summary, cpu
        finally:
            event.remove(engine, "before_cursor_execute", count)

    profiler = None
    if profile:
        import cProfile

        profiler = cProfile.Profile()
    peak, peak_sql, summary, peak_cpu = timed_tick(profiler)
    if profiler:
        profiler.dump_stats(profile)
    steady, steady_sql, _, steady_cpu = timed_tick()
    engine.dispose()
    print(json.dumps({"peak": peak, "peak_sql": peak_sql, "queued": summary.get("reminders"),
                      "peak_cpu": peak_cpu,
                "steady": steady,
                "steady_cpu": steady_cpu, "steady_sql": steady_sql, "start_kib": start_kib,
                      "peak_kib": peak_rss_kib()}))


def run_child(url: str, profile: str | None = None) -> dict:
    command = [sys.executable, os.path.abspath(__file__), "--child", url]
    if profile:
        command += ["--profile", profile]
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    if done.returncode:
        sys.stderr.write(done.stderr)
        raise SystemExit(f"the tick process failed ({done.returncode})")
    return json.loads(done.stdout.strip().splitlines()[-1])


def bench(backend: str, n: int, repeat: int, profile: str | None) -> None:
    with scratch.database(backend, "bench_tick") as url:
        if url is None:
            return
        seeded = seed(url, n)
        runs = []
        for index in range(repeat):
            with copy_of(backend, url) as copy:
                runs.append(run_child(copy, f"{profile}.{backend}.{n}.{index}" if profile else None))

    def median(key: str) -> float:
        return statistics.median(r[key] for r in runs)

    def spread(key: str, fmt: str) -> str:
        values = [r[key] for r in runs]
        return f"{format(median(key), fmt)}" + (f" ({format(min(values), fmt)}–{format(max(values), fmt)})"
                                                 if len(values) > 1 else "")

    mib = {k: [r[k] / 1024 for r in runs] for k in ("start_kib", "peak_kib")}
    print(f"{backend:>10} {n:>6}  seeded {seeded:5.1f}s  "
          f"peak {spread('peak', '.2f')}s (CPU {median('peak_cpu'):.2f}s) {runs[0]['peak_sql']} SQL, "
          f"queued {runs[0]['queued']}  "
          f"steady {spread('steady', '.2f')}s (CPU {median('steady_cpu'):.2f}s) {runs[0]['steady_sql']} SQL  "
          f"peak RSS {statistics.median(mib['peak_kib']):.0f} MiB (start {statistics.median(mib['start_kib']):.0f})"
          f"  [{'OK' if median('peak') <= 1 else 'SLOW'}]", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--participants", default="10000",
                        help="comma-separated sizes, e.g. 1000,10000,50000")
    parser.add_argument("--db", action="append", choices=["sqlite", "postgresql"])
    parser.add_argument("--repeat", type=int, default=3, help="fresh tick processes per size (median)")
    parser.add_argument("--profile", metavar="PREFIX",
                        help="write cProfile stats of each peak tick to PREFIX.<db>.<n>.<run>")
    parser.add_argument("--child", metavar="URL", help=argparse.SUPPRESS)
    options = parser.parse_args()
    if options.child:
        child(options.child, options.profile)
        return
    sizes = [int(size.replace("_", "")) for size in options.participants.split(",")]
    for backend in options.db or ["sqlite", "postgresql"]:
        for n in sizes:
            bench(backend, n, options.repeat, options.profile)


if __name__ == "__main__":
    main()
