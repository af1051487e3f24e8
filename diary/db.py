"""Database engine, the per-request session, and the append-only guard."""

from __future__ import annotations

from flask import Flask, current_app, g
from sqlalchemy import event, text
from sqlalchemy.engine import Engine
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
    return create_engine(url, pool_pre_ping=True, **kw)


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


def init_app(app: Flask) -> None:
    app.extensions["diary.engine"] = make_engine(app.config["DATABASE_URL"])
    app.teardown_appcontext(_close_session)


def engine() -> Engine:
    return current_app.extensions["diary.engine"]


def session() -> Session:
    """The request's session, opened on first use and closed at teardown."""
    if "db_session" not in g:
        g.db_session = Session(engine(), expire_on_commit=False)
    return g.db_session


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
