"""Alembic environment: autogenerates from SQLModel.metadata (STYLE: full-stack-fastapi-template)."""

import os
from logging.config import fileConfig

from alembic import context
from sqlmodel import SQLModel

import diary.models  # noqa: F401 - registers every table on SQLModel.metadata
from diary.db import make_engine

config = context.config
if config.config_file_name is not None and config.attributes.get("configure_logger", True):
    fileConfig(config.config_file_name, disable_existing_loggers=False)

target_metadata = SQLModel.metadata


def _url() -> str:
    url = config.attributes.get("url") or os.environ.get("DATABASE_URL")
    if not url:
        url = "sqlite:///" + os.path.join(os.path.dirname(__file__), "..", "instance", "diary.sqlite3")
    return url


def run_migrations_offline() -> None:
    context.configure(
        url=_url(), target_metadata=target_metadata, literal_binds=True,
        compare_type=True, render_as_batch=True,
    )
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:
        _run(connection)
        return
    engine = make_engine(_url())
    with engine.connect() as connection:
        _run(connection)
    engine.dispose()


def _run(connection) -> None:
    # Batch mode lets SQLite alter tables (it has no ALTER COLUMN).
    context.configure(
        connection=connection, target_metadata=target_metadata,
        compare_type=True, render_as_batch=True,
    )
    with context.begin_transaction():
        context.run_migrations()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
