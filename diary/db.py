"""Database engine, the per-request session and its unit of work, and the append-only guard.

One unit of work per request: views and services never commit or roll back. Services flush (and
use `session.begin_nested()` for an inner step that may fail on its own); the request's session is
committed once the view has answered with a status below 400, before the response leaves, and
rolled back otherwise (an exception, a 4xx refusal, a 5xx). A failed commit becomes a translated
409 (a conflict with a concurrent change) or 500 page. The few writes that must outlive a refusal
(a failed sign-in's count and lock) are committed by `commit_now()`. The scheduler and the CLI are
not requests: they open their own sessions and commit them explicitly.
"""

from __future__ import annotations

import logging
import select
import time
from functools import wraps

from flask import Flask, current_app, g, request
from flask import session as cookie_session
from sqlalchemy import event, text
from sqlalchemy.engine import Engine
from sqlalchemy.exc import DBAPIError, DisconnectionError, IntegrityError
from sqlmodel import Session, create_engine

from diary.models import APPEND_ONLY


class AppendOnlyError(RuntimeError):
    """A clinical or audit row was about to be changed in place or deleted."""


def make_engine(url: str, **kw) -> Engine:
    # A database error's message must not carry the statement's values into a log (names, notes).
    kw.setdefault("hide_parameters", True)
    if url.startswith("postgresql://"):
        url = "postgresql+psycopg://" + url.removeprefix("postgresql://")
    if url.startswith("sqlite"):
        engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": 30}, **kw)
        event.listen(engine, "connect", _sqlite_pragmas)
        event.listen(engine, "savepoint", _sqlite_begin_before_savepoint)
        return engine
    engine = create_engine(url, **kw)
    event.listen(engine, "checkin", _note_idle_since)

    @event.listens_for(engine, "checkout")
    def _checkout(dbapi_conn, record, _proxy) -> None:
        _check_pooled_connection(engine.dialect, dbapi_conn, record)

    return engine


# A pooled connection idle for longer than this is pinged (one round trip) before it is handed out.
PING_AFTER_IDLE_SECONDS = 1.0


def _note_idle_since(_dbapi_conn, record) -> None:
    record.info["idle_since"] = time.monotonic()


def _check_pooled_connection(dialect, dbapi_conn, record) -> None:
    """Never hand a request a pooled PostgreSQL connection that the server has closed (issue 15).

    pool_pre_ping pays a round trip on every checkout; this pays one only where it can learn
    something. A connection the server ended while it sat in the pool (a restart, a terminated
    backend, an idle timeout) has something to read: the server's farewell, then the end of the
    stream. A healthy idle connection has nothing to read. So a readable socket, found by a
    zero-timeout poll without a round trip, means "discard it and connect afresh". A connection idle
    for longer than PING_AFTER_IDLE_SECONDS is also pinged, as pool_pre_ping would do: that covers a
    peer that vanished without a word (a host crash, a failover), which no poll can see. Within a
    second of such a crash the database is unreachable anyway, pinged or not. Under load a
    connection is back in use within milliseconds, so a check-off no longer pays for a ping.
    Raising DisconnectionError makes the pool replace the connection (and check the new one)."""
    idle_since = record.info.pop("idle_since", None)
    if idle_since is None:
        return  # a connection just made
    try:
        poll = select.poll()
        poll.register(dbapi_conn.fileno(), select.POLLIN)
        readable = poll.poll(0)  # data, the end of the stream, or an error: not a quiet idle socket
    except Exception as error:  # a closed socket, a connection the driver knows is broken
        raise DisconnectionError("the pooled connection is unusable") from error
    if readable:
        raise DisconnectionError("the server closed the pooled connection")
    if time.monotonic() - idle_since > PING_AFTER_IDLE_SECONDS:
        try:
            alive = dialect.do_ping(dbapi_conn)
        except Exception as error:
            raise DisconnectionError("the pooled connection did not answer a ping") from error
        if not alive:
            raise DisconnectionError("the pooled connection did not answer a ping")


def _sqlite_pragmas(dbapi_conn, _record) -> None:
    # SQLite leaves foreign keys off by default; WAL lets the scheduler write while pages read.
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA foreign_keys=ON")
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA busy_timeout=30000")
    cur.close()


def _sqlite_begin_before_savepoint(conn, _name) -> None:
    # Python's sqlite3 opens a transaction only before INSERT/UPDATE/DELETE, not before SAVEPOINT;
    # a SAVEPOINT outside a transaction starts one of its own, and its RELEASE then COMMITS. So a
    # row written in the first begin_nested() of a transaction (a dose log) was committed apart from
    # its audit event and survived a rollback. Begin the real transaction first, as PostgreSQL has.
    dbapi = conn.connection.dbapi_connection
    if not dbapi.in_transaction:
        dbapi.execute("BEGIN")


@event.listens_for(Session, "before_flush")
def _refuse_edits_of_append_only_rows(session, _flush_context, _instances) -> None:
    for obj in list(session.dirty) + list(session.deleted):
        if isinstance(obj, APPEND_ONLY) and (obj in session.deleted or session.is_modified(obj)):
            raise AppendOnlyError(
                f"{type(obj).__name__} rows are append-only: write a superseding row instead"
            )


@event.listens_for(Session, "do_orm_execute")
def _refuse_bulk_edits_of_append_only_rows(state) -> None:
    # session.exec(update(DoseLog)...) never reaches before_flush, so it is checked here too.
    if not (state.is_update or state.is_delete):
        return
    mapper = state.bind_mapper
    if mapper is not None and issubclass(mapper.class_, APPEND_ONLY):
        raise AppendOnlyError(
            f"{mapper.class_.__name__} rows are append-only: write a superseding row instead"
        )


log = logging.getLogger(__name__)


class ReadsOnlyError(RuntimeError):
    """A page marked @reads_only tried to write (diary/db.py, reads_only)."""


def _refuse_writes(_conn, _cursor, statement: str, _parameters, context, _executemany) -> None:
    # The first word says it: a SELECT or SHOW reads; anything else may write (a WITH may hold an
    # INSERT), unless the statement says it is a write complete in itself (devices.seen).
    words = statement.lstrip().split(None, 1)
    if words and words[0].upper() in ("SELECT", "SHOW"):
        return
    if context is not None and context.execution_options.get("standalone_write"):
        return
    raise ReadsOnlyError("a @reads_only page tried to write; drop the mark or move the write")


def init_app(app: Flask) -> None:
    app.extensions["diary.engine"] = make_engine(app.config["DATABASE_URL"])
    app.teardown_appcontext(_close_session)


def _for_reads(engine: Engine) -> Engine:
    """The engine of a @reads_only page's session: `engine`'s own pool and listeners, each
    statement on its own (no BEGIN and COMMIT around them), and every write refused but a
    standalone one. Made once per engine and kept with it."""
    reads = engine.__dict__.get("_diary_reads")
    if reads is None:
        reads = engine._diary_reads = engine.execution_options(isolation_level="AUTOCOMMIT")
        event.listen(reads, "before_cursor_execute", _refuse_writes)
    return reads


def reads_only(view):
    """Mark a page that only reads (outermost, above the sign-in check): its request reads without a
    transaction of its own, so it sends no BEGIN and no COMMIT, two of a today page's four round
    trips to PostgreSQL (issue 15). Nothing is lost by it: under READ COMMITTED every statement of a
    transaction reads with a snapshot of its own anyway, and a page's reads are single statements
    (a course record is one). A write would commit alone, so every write is refused (ReadsOnlyError,
    a 500 that tests find) except one that stands alone by nature and says so with the execution
    option `standalone_write` (the device's last use, devices.seen). GET and HEAD only: any other
    method keeps its unit of work."""

    @wraps(view)
    def wrapped(*args, **kwargs):
        if request.method in ("GET", "HEAD") and "db_session" not in g:
            g.db_reads_only = True
        return view(*args, **kwargs)

    return wrapped


def init_unit_of_work(app: Flask) -> None:
    """Commit or roll back each request's session. Call last in create_app: after-request hooks run
    in reverse order, so the commit comes before every other app hook (compression, headers, the
    access log, which then sees the status of a failed commit). A blueprint's own hooks run first."""
    app.after_request(_end_unit_of_work)


def engine() -> Engine:
    return current_app.extensions["diary.engine"]


def session() -> Session:
    """The request's session, opened on first use and closed at teardown."""
    if "db_session" not in g:
        bind = _for_reads(engine()) if g.get("db_reads_only") else engine()
        g.db_session = Session(bind, expire_on_commit=False)
    return g.db_session


def commit_now() -> None:
    """Commit what this request has written so far, whatever it answers afterwards.

    Only for writes that must outlive what follows, each named where it is used:
    - a refused sign-in, password signature or TOTP code answers 401, yet the attempt's count, the
      lock it reached and their audit events must stay, or every guess would be free;
    - "forgot PIN" commits its limits before its deliberate wait, not holding their rows through it;
    - each report in a batch from an SMS provider is its own event: a later one that fails must not
      undo it (the provider resends the batch, and what was kept is then a duplicate).
    A view's own work is never committed this way: it is committed with the response, or not at all."""
    s = g.get("db_session")
    if s is not None:
        s.commit()


# SQLSTATEs of a transaction that lost to a concurrent one (PostgreSQL): serialization failure,
# deadlock. The person may simply try again, as for a unique key taken a moment earlier.
_CONFLICTS = ("40001", "40P01")


def _end_unit_of_work(response):
    s = g.get("db_session")
    if s is None:
        return response
    if response.status_code >= 400:
        _discard(s)  # a refusal or an error page changes nothing
        return response
    try:
        s.commit()
    except Exception as exc:  # noqa: BLE001 - whatever failed, nothing was saved: say so, never "done"
        _discard(s)
        return _commit_failed(exc)
    return response


def _discard(s: Session) -> None:
    try:
        s.rollback()
    except Exception:  # noqa: BLE001 - the connection is gone (the database is down): close() drops it
        log.warning("rollback failed; the connection is discarded", exc_info=True)


def _commit_failed(exc: Exception):
    from werkzeug.exceptions import Conflict, InternalServerError

    from diary.errors import render_error

    # The page the view rendered may flash "saved": it was not, so that message must not show next.
    cookie_session.pop("_flashes", None)
    conflict = isinstance(exc, IntegrityError) or (
        isinstance(exc, DBAPIError) and getattr(exc.orig, "sqlstate", None) in _CONFLICTS)
    if conflict:
        log.warning("commit refused by the database (%s): nothing saved", type(exc.orig).__name__)
        error = Conflict()
    else:
        log.error("commit failed: nothing saved", exc_info=exc)
        error = InternalServerError(original_exception=exc)
    # An error handler may answer (body, status); the later hooks need a response.
    return current_app.make_response(render_error(error))


def _close_session(_exc) -> None:
    s = g.pop("db_session", None)
    if s is not None:
        s.close()


# SQLite reads this many rows per index when it analyses (PRAGMA analysis_limit): approximate
# statistics in milliseconds, instead of a full scan of every table.
SQLITE_ANALYSIS_LIMIT = 1000


def refresh_statistics(engine: Engine, *, force: bool = False) -> list[str]:
    """Give the query planner statistics, so no page depends on someone having run ANALYZE.

    A bulk load, a restore or a new database leaves the planner guessing; with bad guesses the
    adherence grid once took 6.7 s instead of 0.2 s on SQLite (issue 15). The scheduler calls this
    at start and every hour; `seed-demo` and `restore` call it with `force`.
    SQLite: ANALYZE (with an analysis limit) when `force`, or when there are no statistics yet, or
    `PRAGMA optimize` otherwise. PostgreSQL: ANALYZE of the tables never analysed (autovacuum keeps
    the rest fresh), or of every table when `force`. Returns what it did."""
    with engine.connect() as conn:
        if engine.dialect.name == "sqlite":
            has_stats = conn.execute(text(
                "SELECT count(*) FROM sqlite_master WHERE name = 'sqlite_stat1'")).scalar()
            if force or not has_stats:
                conn.execute(text(f"PRAGMA analysis_limit={SQLITE_ANALYSIS_LIMIT}"))
                conn.execute(text("ANALYZE"))
                done = ["ANALYZE"]
            else:
                conn.execute(text("PRAGMA optimize"))
                done = ["PRAGMA optimize"]
        else:
            tables = conn.execute(text(
                "SELECT relname FROM pg_stat_user_tables WHERE schemaname = current_schema() "
                "AND (:force OR (last_analyze IS NULL AND last_autoanalyze IS NULL))"),
                {"force": force}).scalars().all()
            for table in tables:
                conn.execute(text(f'ANALYZE "{table}"'))
            done = [f"ANALYZE {table}" for table in tables]
        conn.commit()
    return done
