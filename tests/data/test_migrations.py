"""Migrations build the schema the models describe, both ways, on SQLite and PostgreSQL."""

from __future__ import annotations

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Column, MetaData, String, inspect, text
from sqlmodel import SQLModel

import diary.models  # noqa: F401 - registers every table on SQLModel.metadata
from diary import db, migrate

APP_TABLES = set(SQLModel.metadata.tables)


@pytest.fixture
def engine(empty_database_url):
    engine = db.make_engine(empty_database_url)
    yield engine
    engine.dispose()


@pytest.fixture
def migrated(database_url):
    engine = db.make_engine(database_url)
    yield engine
    engine.dispose()


def _tables(engine) -> set[str]:
    return set(inspect(engine).get_table_names()) - {"alembic_version"}


def _drift(engine, metadata=SQLModel.metadata) -> list:
    with engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={"compare_type": True, "render_as_batch": True})
        return compare_metadata(context, metadata)


def test_upgrade_downgrade_upgrade_round_trips(engine):
    migrate.upgrade(engine)
    assert _tables(engine) == APP_TABLES
    migrate.downgrade(engine, "base")
    assert _tables(engine) == set()
    migrate.upgrade(engine)
    assert _tables(engine) == APP_TABLES
    assert _drift(engine) == []


def test_upgrade_records_the_head_revision(engine):
    migrate.upgrade(engine)
    with engine.connect() as conn:
        versions = conn.execute(text("SELECT version_num FROM alembic_version")).scalars().all()
    head = ScriptDirectory.from_config(migrate.alembic_config(engine)).get_current_head()
    assert versions == [head]


def test_the_migrations_match_the_models(migrated):
    assert _drift(migrated) == []


def test_the_drift_check_notices_a_column_the_migrations_lack(migrated):
    changed = MetaData()
    for table in SQLModel.metadata.tables.values():
        table.to_metadata(changed)
    changed.tables["participant"].append_column(Column("nickname", String(50), nullable=True))
    drift = _drift(migrated, changed)
    assert [(d[0], d[2], d[3].name) for d in drift] == [("add_column", "participant", "nickname")]


def test_the_drift_check_notices_a_table_the_migrations_lack(migrated):
    changed = MetaData()
    for name, table in SQLModel.metadata.tables.items():
        if name != "flag":
            table.to_metadata(changed)
    drift = _drift(migrated, changed)
    assert ("remove_table", "flag") in [(d[0], d[1].name) for d in drift]
