"""What each test-suite speed-up saves, measured one at a time (issue 8).

    .venv/bin/python bench/test_costs.py [--repeat 20]

Prints, per technique, the cost a test paid before and what it pays now:
- argon2 at the production cost against the tests' cheap parameters (one hash);
- building an app against restoring the worker's reused one;
- rendering the sign-in page in a new app, without and with the shared bytecode cache;
- a SQLite commit on disk against one in /dev/shm;
- a PostgreSQL commit with synchronous_commit on and off;
- creating and dropping a PostgreSQL test database (the drop now runs in the background).
Medians of --repeat runs, in milliseconds. Run it on a quiet machine: the figures are wall time.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path

from sqlalchemy import create_engine, text

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from argon2 import PasswordHasher  # noqa: E402

from diary import create_app, db, migrate  # noqa: E402
from tests.conftest import CHEAP_ARGON2, MemoryBytecodeCache, make_test_app  # noqa: E402

os.environ.setdefault("SECRET_KEY", "bench")
PG_ADMIN = os.environ.get("TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres")


def median_ms(fn, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append((time.perf_counter() - start) * 1000)
    return statistics.median(times)


def row(what: str, before: float, after: float) -> None:
    print(f"{what:<46} {before:9.1f} {after:9.1f} {before / after if after else float('inf'):7.1f}×")


def argon2_costs(repeat: int) -> None:
    strong, cheap = PasswordHasher(), PasswordHasher(time_cost=CHEAP_ARGON2["ARGON2_TIME_COST"],
                                                     memory_cost=CHEAP_ARGON2["ARGON2_MEMORY_KIB"],
                                                     parallelism=CHEAP_ARGON2["ARGON2_PARALLELISM"])
    row("argon2 hash (world: 3 before, 0 now; sign-in 1)",
        median_ms(lambda: strong.hash("correct horse battery"), repeat),
        median_ms(lambda: cheap.hash("correct horse battery"), repeat))


def app_costs(url: str, repeat: int) -> None:
    def build():
        app = create_app({"TESTING": True, "DATABASE_URL": url, "SECRET_KEY": "k", "DATA_ENCRYPTION_KEY": "k",
                          **CHEAP_ARGON2})
        app.extensions["diary.engine"].dispose()

    built = make_test_app(url)
    config, extensions = dict(built.config), dict(built.extensions)

    def restore():
        built.config.clear()
        built.config.update(config)
        built.extensions.clear()
        built.extensions.update(extensions)
        built.extensions["diary.engine"] = db.make_engine(url)
        built.extensions["diary.engine"].dispose()

    row("app for a test: create_app / restore", median_ms(build, repeat), median_ms(restore, repeat))

    shared = MemoryBytecodeCache()

    def first_render(cache) -> float:
        # Only the request is timed: the app is built first, as the app fixture does.
        times = []
        for _ in range(repeat):
            app = make_test_app(url)
            app.jinja_env.bytecode_cache = cache
            client = app.test_client()
            start = time.perf_counter()
            client.get("/login")
            times.append((time.perf_counter() - start) * 1000)
            app.extensions["diary.engine"].dispose()
        return statistics.median(times)

    first_render(shared)  # fill the cache once, as the first test of a worker does
    row("new app's first page: no cache / shared cache", first_render(None), first_render(shared))


def commit_ms(url: str, repeat: int) -> float:
    """Median time of a one-row INSERT and its COMMIT (in a scratch table, dropped after)."""
    engine = db.make_engine(url)
    with engine.begin() as conn:
        conn.execute(text("CREATE TABLE IF NOT EXISTS commit_cost (x INTEGER)"))

    def one():
        with engine.begin() as conn:
            conn.execute(text("INSERT INTO commit_cost VALUES (1)"))

    result = median_ms(one, repeat)
    with engine.begin() as conn:
        conn.execute(text("DROP TABLE commit_cost"))
    engine.dispose()
    return result


def commit_costs(repeat: int) -> None:
    with tempfile.TemporaryDirectory() as disk, tempfile.TemporaryDirectory(dir="/dev/shm") as shm:
        row("SQLite commit: disk / /dev/shm", commit_ms(f"sqlite:///{Path(disk) / 'a.db'}", repeat),
            commit_ms(f"sqlite:///{Path(shm) / 'a.db'}", repeat))


def postgres_costs(template_url: str, repeat: int) -> None:
    admin = create_engine(PG_ADMIN, isolation_level="AUTOCOMMIT")
    template = template_url.rsplit("/", 1)[1]

    row("PostgreSQL commit: synchronous_commit on / off", commit_ms(template_url, repeat),
        commit_ms(template_url + "?options=-c%20synchronous_commit%3Doff", repeat))

    creates, drops = [], []
    for _ in range(repeat):
        name = f"diary_cost_{uuid.uuid4().hex[:8]}"
        with admin.connect() as conn:
            start = time.perf_counter()
            conn.execute(text(f'CREATE DATABASE "{name}" TEMPLATE "{template}"'))
            creates.append((time.perf_counter() - start) * 1000)
            start = time.perf_counter()
            conn.execute(text(f'DROP DATABASE "{name}" WITH (FORCE)'))
            drops.append((time.perf_counter() - start) * 1000)
    create, drop = statistics.median(creates), statistics.median(drops)
    row("PostgreSQL test database: create+drop / create", create + drop, create)
    admin.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=20)
    args = parser.parse_args()
    print(f"{'per test (ms, median of ' + str(args.repeat) + ')':<46} {'before':>9} {'now':>9} {'saved':>8}")
    argon2_costs(args.repeat)
    with tempfile.TemporaryDirectory() as tmp:
        url = f"sqlite:///{Path(tmp) / 'bench.sqlite3'}"
        engine = db.make_engine(url)
        migrate.upgrade(engine)
        engine.dispose()
        app_costs(url, args.repeat)
    commit_costs(args.repeat * 5)

    admin = create_engine(PG_ADMIN, isolation_level="AUTOCOMMIT")
    name = f"diary_cost_tpl_{uuid.uuid4().hex[:8]}"
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        template_url = PG_ADMIN.rsplit("/", 1)[0] + "/" + name
        engine = db.make_engine(template_url)
        migrate.upgrade(engine)
        engine.dispose()
        postgres_costs(template_url, args.repeat)
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


if __name__ == "__main__":
    main()
