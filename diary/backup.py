"""Online backup and restore of the database (issue 14, item 7).

SQLite: the backup API copies a consistent snapshot page by page while the app keeps writing (a
plain file copy of a WAL database can catch a half-written transaction). PostgreSQL: pg_dump, which
reads everything in one snapshot, in its custom format; pg_restore puts it back in one transaction.
A backup holds phone numbers and TOTP secrets encrypted under DATA_ENCRYPTION_KEY: without that key
(kept apart from the backups, README "Backups") a restored database cannot be read.
"""

from __future__ import annotations

import os
import shutil
import sqlite3
import subprocess
import tempfile
from pathlib import Path
from urllib.parse import quote, urlencode

from sqlalchemy import Engine, inspect, text

from diary.db import refresh_statistics


class BackupError(RuntimeError):
    """The backup or restore was not done; the message says why."""


# Tables whose rows make a database "live": restoring over it would lose them.
_LIVE_TABLES = ("participant", "staffuser", "site", "auditevent")


def backup(engine: Engine, path: str) -> None:
    """Write a consistent copy of the running database to `path` (replaced only when complete)."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    # Written beside the target and renamed: a backup cut short never replaces a good one.
    fd, partial = tempfile.mkstemp(prefix=target.name + ".", suffix=".partial", dir=target.parent)
    os.close(fd)
    try:
        if engine.dialect.name == "sqlite":
            _sqlite_backup(_sqlite_path(engine), partial)
        else:
            uri, env = _libpq(engine)
            _run([_tool("pg_dump"), "--format=custom", "--no-owner", "--file", partial, "--dbname", uri], env)
        os.replace(partial, target)
    finally:
        Path(partial).unlink(missing_ok=True)


def is_live(engine: Engine) -> bool:
    """Whether the database holds data (a site, an account, a participant or an audit event)."""
    existing = set(inspect(engine).get_table_names())
    with engine.connect() as conn:
        for table in _LIVE_TABLES:
            if table in existing and conn.execute(text(f"SELECT 1 FROM {table} LIMIT 1")).first():  # noqa: S608
                return True
    return False


def restore(engine: Engine, path: str, *, force: bool = False) -> None:
    """Replace the database's content with the backup at `path`, then refresh the planner's
    statistics. Refuses a database that holds data unless `force`."""
    if not Path(path).is_file():
        raise BackupError(f"no backup file at {path}")
    if not force and is_live(engine):
        raise BackupError("the database holds data; restoring would overwrite it (use --force if you mean it)")
    engine.dispose()  # no pooled connection may hold the old content open
    if engine.dialect.name == "sqlite":
        _sqlite_restore(path, _sqlite_path(engine))
    else:
        uri, env = _libpq(engine)
        _run([_tool("pg_restore"), "--clean", "--if-exists", "--no-owner", "--single-transaction",
              "--exit-on-error", "--dbname", uri, path], env)
    # A restored database has no planner statistics: without them the first queries plan badly.
    refresh_statistics(engine, force=True)
    engine.dispose()


def _sqlite_path(engine: Engine) -> str:
    database = engine.url.database
    if not database or database == ":memory:":
        raise BackupError("an in-memory SQLite database cannot be backed up")
    return database


def _sqlite_backup(source: str, target: str) -> None:
    src = sqlite3.connect(source, timeout=30)
    dst = sqlite3.connect(target)
    try:
        # pages=-1: one step, so the copy is one snapshot even while writers continue (they wait
        # for the read to finish at most; WAL writers do not wait at all).
        src.backup(dst, pages=-1)
        problem = dst.execute("PRAGMA integrity_check").fetchone()[0]
        dst.execute("PRAGMA journal_mode=DELETE")  # a single self-contained file
    finally:
        dst.close()
        src.close()
    if problem != "ok":
        raise BackupError(f"the copy failed its integrity check: {problem}")


def _sqlite_restore(backup_path: str, target: str) -> None:
    src = sqlite3.connect(f"file:{backup_path}?mode=ro", uri=True)
    try:
        if src.execute("PRAGMA integrity_check").fetchone()[0] != "ok":
            raise BackupError(f"{backup_path} is not a sound SQLite database")
        dst = sqlite3.connect(target, timeout=30)
        try:
            src.backup(dst, pages=-1)
        finally:
            dst.close()
    except sqlite3.DatabaseError as exc:
        raise BackupError(f"{backup_path} is not a SQLite backup ({exc})") from None
    finally:
        src.close()


def _libpq(engine: Engine) -> tuple[str, dict[str, str]]:
    """The database as a libpq URI, and the environment that carries its password (never on the
    command line, where `ps` would show it)."""
    url = engine.url
    netloc = quote(url.username or "", safe="")
    if url.host:
        netloc += "@" + url.host + (f":{url.port}" if url.port else "")
    query = {k: v if isinstance(v, str) else v[-1] for k, v in url.query.items()}
    uri = f"postgresql://{netloc}/{quote(url.database or '', safe='')}"
    if query:
        # libpq decodes %20 but not "+": quote, not quote_plus.
        uri += "?" + urlencode(query, quote_via=quote)
    env = dict(os.environ)
    if url.password:
        env["PGPASSWORD"] = str(url.password)
    return uri, env


def _tool(name: str) -> str:
    found = shutil.which(name)
    if found is None:
        raise BackupError(f"{name} is not installed (Debian: apt-get install postgresql-client)")
    return found


def _run(argv: list[str], env: dict[str, str]) -> None:
    done = subprocess.run(argv, capture_output=True, text=True, check=False, env=env)  # noqa: S603 - fixed tools
    if done.returncode != 0:
        # pg_dump names the database URL in some errors: keep only the first line, without it.
        first = (done.stderr.strip().splitlines() or ["failed"])[0]
        raise BackupError(f"{Path(argv[0]).name}: {first}")
