"""Running Alembic from the app (CLI `migrate`) and from tests."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager

from alembic import command
from alembic.config import Config
from sqlalchemy.engine import Engine

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def alembic_config(engine: Engine) -> Config:
    cfg = Config(os.path.join(ROOT, "alembic.ini"))
    cfg.set_main_option("script_location", os.path.join(ROOT, "migrations"))
    cfg.attributes["url"] = engine.url.render_as_string(hide_password=False)
    cfg.attributes["configure_logger"] = False
    return cfg


@contextmanager
def _migrating(engine: Engine) -> Iterator:
    """A connection in one transaction for a migration run.

    On SQLite, Alembic's batch mode changes a table by copying it and dropping the old one, which
    the foreign keys of rows pointing at it refuse (a downgrade of `staffuser` with staff in it).
    Foreign keys are switched off for the run, which SQLite allows only outside a transaction, and
    checked as a whole before the run commits: a migration that breaks one is rolled back."""
    with engine.connect() as connection:
        sqlite = engine.dialect.name == "sqlite"
        if sqlite:
            connection.exec_driver_sql("PRAGMA foreign_keys=OFF")
            connection.commit()
        try:
            with connection.begin():
                yield connection
                if sqlite:
                    broken = connection.exec_driver_sql("PRAGMA foreign_key_check").fetchall()
                    if broken:
                        raise RuntimeError(f"the migration broke {len(broken)} foreign key(s): {broken[:5]}")
        finally:
            if sqlite:
                connection.exec_driver_sql("PRAGMA foreign_keys=ON")
                connection.commit()


def upgrade(engine: Engine, revision: str = "head") -> None:
    cfg = alembic_config(engine)
    with _migrating(engine) as connection:
        cfg.attributes["connection"] = connection
        command.upgrade(cfg, revision)


def downgrade(engine: Engine, revision: str) -> None:
    cfg = alembic_config(engine)
    with _migrating(engine) as connection:
        cfg.attributes["connection"] = connection
        command.downgrade(cfg, revision)
