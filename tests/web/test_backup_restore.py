"""Backups (issue 14, item 7): a backup taken while check-offs are being written is consistent, and a
restore of it verifies; restore refuses to overwrite a database that holds data unless --force."""

from __future__ import annotations

import threading
import uuid

from sqlalchemy import text
from sqlmodel import Session, func, select

from diary.models import AuditEvent, DoseLog, Participant
from diary.services import dosing
from tests.conftest import make_test_app

WRITERS = ("pa", "pb")


def _count(engine, model, *where) -> int:
    with Session(engine) as s:
        return s.exec(select(func.count()).select_from(model).where(*where)).one()


def _write_check_offs(app, world, clock, key: str, stop: threading.Event, written: list) -> None:
    """One thread: staff record and re-record days 1 to 3 of one course, committing each, until stopped."""
    cfg = app.extensions["diary.study"]
    n = 0
    with Session(app.extensions["diary.engine"], expire_on_commit=False) as s:
        participant = s.get(Participant, world.participants[key].id)
        course = s.get(type(world.courses[key]), world.courses[key].id)
        while not stop.is_set() or n < 5:
            dosing.log_dose(s, cfg, participant=participant, course_id=course.id, day=1 + n % 3,
                            outcome=("taken", "not_taken")[n % 2], client_key=f"bk-{uuid.uuid4().hex}",
                            source="staff", now=clock.now, taken_at=clock.now if n % 2 == 0 else None,
                            reason="forgot" if n % 2 else None, staff_id=world.staff["nurse_a"].id,
                            correction_reason="backup test")
            s.commit()
            n += 1
    written.append(n)


def test_a_backup_under_write_load_restores_to_a_verified_database(app, runner, world, clock, tmp_path,
                                                                  empty_database_url):
    engine, path = app.extensions["diary.engine"], tmp_path / "diary.backup"
    stop, written = threading.Event(), []
    writers = [threading.Thread(target=_write_check_offs, args=(app, world, clock, key, stop, written))
               for key in WRITERS]
    for t in writers:
        t.start()
    while _count(engine, DoseLog) < 10:  # the writers are well under way
        pass
    before = _count(engine, DoseLog)
    result = runner.invoke(args=["backup", str(path)])
    after = _count(engine, DoseLog)
    stop.set()
    for t in writers:
        t.join(120)
    assert result.exit_code == 0, result.output
    assert len(written) == len(WRITERS)

    restored = make_test_app(empty_database_url)
    result = restored.test_cli_runner().invoke(args=["restore", str(path)])
    assert result.exit_code == 0, result.output
    assert "Audit trail intact" in result.output
    target = restored.extensions["diary.engine"]
    logs = _count(target, DoseLog)
    # A snapshot from within the backup: never a dose log without its audit event, or the reverse.
    assert before <= logs <= after
    assert logs == _count(target, AuditEvent, AuditEvent.action.in_(("dose_logged", "dose_log_superseded")))
    assert _count(target, Participant) == len(world.participants)
    assert _planner_statistics(target, "doselog") > 0  # ANALYZE ran: the first queries plan well


def _planner_statistics(engine, table: str) -> int:
    query = ("SELECT count(*) FROM sqlite_stat1 WHERE tbl = :t" if engine.dialect.name == "sqlite"
             else "SELECT count(*) FROM pg_stats WHERE tablename = :t")
    with engine.connect() as conn:
        return conn.execute(text(query), {"t": table}).scalar_one()


def test_restore_refuses_to_overwrite_a_database_that_holds_data(app, runner, world, tmp_path, session):
    path = tmp_path / "diary.backup"
    assert runner.invoke(args=["backup", str(path)]).exit_code == 0
    refused = runner.invoke(args=["restore", str(path)])
    assert refused.exit_code == 1
    assert "holds data" in refused.output


def test_restore_with_force_puts_the_backup_back(app, runner, world, clock, tmp_path, session):
    path = tmp_path / "diary.backup"
    assert runner.invoke(args=["backup", str(path)]).exit_code == 0
    p = session.get(Participant, world.participants["pa"].id)
    dosing.log_dose(session, app.extensions["diary.study"], participant=p, course_id=world.courses["pa"].id, day=1,
                    outcome="taken", client_key="after-backup", source="staff", now=clock.now,
                    taken_at=clock.now, staff_id=world.staff["nurse_a"].id, correction_reason="late entry")
    session.commit()
    result = runner.invoke(args=["restore", "--force", str(path)])
    assert result.exit_code == 0, result.output
    assert _count(app.extensions["diary.engine"], DoseLog) == 0  # what was written after the backup is gone
