"""Inserts that a uniqueness rule makes one-time, as one atomic statement on SQLite and PostgreSQL."""

from __future__ import annotations

from functools import lru_cache

from sqlalchemy import Float, Table
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlmodel import Session


@lru_cache(maxsize=32)
def _statement(table: Table, dialect: str, also: tuple = ()):
    insert = (pg_insert if dialect == "postgresql" else sqlite_insert)(table)
    return insert.on_conflict_do_nothing().returning(*table.c, *also)


def insert_once(session: Session, table: Table, values: dict, also: tuple = ()) -> dict | None:
    """INSERT … ON CONFLICT DO NOTHING RETURNING the row: one statement, and whichever unique rule
    the row would break, nothing is written and None comes back (the caller reads the winner). The
    row is returned as a SELECT would return it: SQLite's RETURNING gives back a REAL column's 5.0
    as the integer 5, and an audit event fingerprints this very row.

    `also`: labelled expressions the same statement returns after the row's columns, evaluated only
    when the row was written (their parameters join `values`): audit.insert_locked's chain lock."""
    session.flush()
    statement = _statement(table, session.get_bind().dialect.name, also)
    row = session.execute(statement, values).mappings().first()
    if row is None:
        return None
    columns = table.c
    return {name: float(value) if value is not None and name in columns and isinstance(columns[name].type, Float)
            else value for name, value in row.items()}
