"""The planner gets statistics without anyone running ANALYZE by hand (issue 15)."""

from sqlalchemy import text

from diary import db


def _analysed(engine) -> bool:
    with engine.connect() as conn:
        if engine.dialect.name == "sqlite":
            if not conn.execute(text("SELECT count(*) FROM sqlite_master WHERE name = 'sqlite_stat1'")).scalar():
                return False
            return bool(conn.execute(text("SELECT count(*) FROM sqlite_stat1 WHERE tbl = 'course'")).scalar())
        # reltuples is -1 until a table is first analysed (PostgreSQL 14+).
        return conn.execute(text("SELECT reltuples FROM pg_class WHERE relname = 'course'")).scalar() >= 0


def test_a_new_database_is_analysed_once_then_left_to_cheap_upkeep(app, world):
    engine = app.extensions["diary.engine"]
    assert not _analysed(engine)
    first = db.refresh_statistics(engine)
    assert _analysed(engine)
    assert first == ["ANALYZE"] or "ANALYZE course" in first
    # Once analysed, the hourly call does not re-read every table.
    again = db.refresh_statistics(engine)
    assert again == ["PRAGMA optimize"] or "ANALYZE course" not in again
    # After a restore or a bulk load, `force` analyses everything again.
    forced = db.refresh_statistics(engine, force=True)
    assert forced == ["ANALYZE"] or "ANALYZE course" in forced


def test_the_demo_command_leaves_statistics_behind(app, runner):
    engine = app.extensions["diary.engine"]
    result = runner.invoke(args=["demo"])
    assert result.exit_code == 0, result.output
    assert _analysed(engine)
