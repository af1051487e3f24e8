"""A pooled PostgreSQL connection that the server ended is never handed to a request (diary.db).

The pool keeps connections between requests; a database restart or an administrator ending a
backend closes them from the server's side. The next request must still be served (no 5xx), and a
healthy connection must be reused rather than replaced.
"""

from __future__ import annotations

import pytest
from sqlalchemy import create_engine, text

from diary import db

pytestmark = pytest.mark.postgres


def _backend_pid(engine) -> int:
    with engine.connect() as conn:
        return conn.execute(text("SELECT pg_backend_pid()")).scalar_one()


def _end_backends(database_url: str, pids: list[int] | None = None) -> int:
    """End these backends of the test's database (all but the caller's when None), as a restart or an
    administrator would, and wait until they are gone (pg_terminate_backend only signals them)."""
    admin = create_engine(database_url)
    with admin.connect() as conn:
        if pids is None:
            pids = conn.execute(text("SELECT pid FROM pg_stat_activity WHERE datname = current_database() "
                                     "AND pid <> pg_backend_pid()")).scalars().all()
        for pid in pids:
            assert conn.execute(text("SELECT pg_terminate_backend(:pid, 5000)"), {"pid": pid}).scalar_one()
    admin.dispose()
    return len(pids)


def test_a_healthy_pooled_connection_is_reused_and_an_ended_one_is_replaced(database_url):
    engine = db.make_engine(database_url)
    try:
        first = _backend_pid(engine)
        assert _backend_pid(engine) == first  # reused: no reconnect per checkout
        _end_backends(database_url, [first])
        replaced = _backend_pid(engine)  # would raise "terminating connection" if handed out
        assert replaced != first
        assert _backend_pid(engine) == replaced
    finally:
        engine.dispose()


def test_a_connection_idle_past_the_ping_threshold_is_checked_and_still_works(database_url, monkeypatch):
    monkeypatch.setattr(db, "PING_AFTER_IDLE_SECONDS", 0.0)
    engine = db.make_engine(database_url)
    try:
        first = _backend_pid(engine)
        assert _backend_pid(engine) == first  # pinged (it answers), then reused
        _end_backends(database_url, [first])
        assert _backend_pid(engine) != first
    finally:
        engine.dispose()


def test_a_request_after_the_server_ended_its_pooled_connections_is_served(app, client, auth, database_url):
    assert auth.participant("pa").status_code == 302
    assert client.get("/").status_code == 200
    engine = app.extensions["diary.engine"]
    pooled = engine.pool.checkedin()
    assert pooled >= 1
    assert _end_backends(database_url) >= pooled
    page = client.get("/")
    assert page.status_code == 200
    assert "I took it" in page.get_data(as_text=True)
