"""Throwaway databases for the benchmarks: one SQLite file, or one PostgreSQL database at
TEST_POSTGRES_URL's server (default postgresql+psycopg://postgres@127.0.0.1:5432/postgres),
dropped afterwards."""

from __future__ import annotations

import os
import shutil
import tempfile
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import create_engine, text

PG_ADMIN = os.environ.get("TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres")


@contextmanager
def database(backend: str, prefix: str = "diary_bench", template: str | None = None) -> Iterator[str | None]:
    """The URL of a fresh database on `backend` ("sqlite" or "postgresql"): empty, or a copy of the
    database at URL `template` (SQLite: its file; PostgreSQL: CREATE DATABASE … TEMPLATE). None,
    with a line saying so, when PostgreSQL cannot be reached."""
    if backend == "sqlite":
        with tempfile.TemporaryDirectory() as tmp:
            if template is not None:
                shutil.copyfile(template.removeprefix("sqlite:///"), f"{tmp}/bench.sqlite3")
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
        copied = "" if template is None else f' TEMPLATE "{template.rsplit("/", 1)[1]}"'
        conn.execute(text(f'CREATE DATABASE "{name}"{copied}'))
    try:
        yield PG_ADMIN.rsplit("/", 1)[0] + "/" + name
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()
