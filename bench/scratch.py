"""Throwaway databases for the benchmarks: one SQLite file, or one PostgreSQL database at
TEST_POSTGRES_URL's server (default postgresql+psycopg://postgres@127.0.0.1:5432/postgres),
dropped afterwards."""

from __future__ import annotations

import os
import tempfile
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import create_engine, text

PG_ADMIN = os.environ.get("TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres")


@contextmanager
def database(backend: str, prefix: str = "diary_bench") -> Iterator[str | None]:
    """The URL of a fresh empty database on `backend` ("sqlite" or "postgresql"); None, with a
    line saying so, when PostgreSQL cannot be reached."""
    if backend == "sqlite":
        with tempfile.TemporaryDirectory() as tmp:
            yield f"sqlite:///{tmp}/bench.sqlite3"
        return
    admin = create_engine(PG_ADMIN, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.execute(text("SELECT 1"))
    except Exception as exc:  # noqa: BLE001 - report and skip
        print(f"PostgreSQL: skipped ({exc.__class__.__name__}: unreachable at {PG_ADMIN})")
        admin.dispose()
        yield None
        return
    name = f"{prefix}_{uuid.uuid4().hex[:8]}"
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield PG_ADMIN.rsplit("/", 1)[0] + "/" + name
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()
