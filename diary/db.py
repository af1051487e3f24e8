"""Database engine, the per-request session, and the append-only guard."""

from __future__ import annotations

from flask import Flask, current_app, g
from sqlalchemy import event
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
        return engine
    return create_engine(url, pool_pre_ping=True, **kw)


def _sqlite_pragmas(dbapi_conn, _record) -> None:
    # SQLite leaves foreign keys off by default; WAL lets the scheduler write while pages read.
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA foreign_keys=ON")
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA busy_timeout=30000")
    cur.close()


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
