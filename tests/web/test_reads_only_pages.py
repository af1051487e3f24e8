"""Pages that only read (@reads_only, diary/db.py): no transaction of their own, and no write but the
device's last use (issue 15). Their reads are single statements; a write there would commit alone,
so it is refused."""


import pytest
from flask import g
from sqlalchemy import event, insert, select

from diary import db
from diary.db import ReadsOnlyError
from diary.models import DeviceSession, Flag
from tests.conftest import check_off_form


@pytest.fixture
def in_transaction(app, backend):
    """For each statement the app sends, whether a transaction was open on its connection after it."""
    seen: list[tuple[str, bool]] = []
    engine = app.extensions["diary.engine"]

    def note(conn, _cursor, statement, *_args):
        raw = conn.connection.dbapi_connection
        open_ = raw.info.transaction_status != 0 if backend == "postgresql" else raw.in_transaction
        seen.append((statement.split(None, 1)[0].upper(), open_))

    event.listen(engine, "after_cursor_execute", note)
    yield seen
    event.remove(engine, "after_cursor_execute", note)


def test_the_today_page_reads_without_a_transaction_but_a_check_off_writes_in_one(client, auth, backend,
                                                                                 in_transaction):
    assert auth.participant("pa").status_code == 302
    in_transaction.clear()
    html = client.get("/").get_data(as_text=True)
    assert "I took it" in html
    # Both reads (who is signed in, the course record), and neither left a transaction open: no
    # BEGIN was sent, so none needs a COMMIT.
    assert [kind for kind, _ in in_transaction] == ["SELECT", "SELECT"]
    assert not any(open_ for _, open_ in in_transaction)

    base, token = check_off_form(html)
    in_transaction.clear()
    r = client.post(f"{base}/taken", data={"client_key": "reads-only-1", "csrf_token": token},
                    headers={"HX-Request": "true"})
    assert r.status_code == 200 and "You took it" in r.get_data(as_text=True)
    # The check-off is one unit of work: every statement inside the one transaction (on SQLite,
    # whose driver begins it at the first write, every write).
    writes = [open_ for kind, open_ in in_transaction if kind != "SELECT"]
    assert len(writes) >= 2 and all(writes)
    if backend == "postgresql":
        assert all(open_ for _, open_ in in_transaction)


def test_a_reads_only_page_still_notes_the_devices_last_use(app, client, auth, clock, session, in_transaction):
    assert auth.participant("pa").status_code == 302
    before = session.exec(select(DeviceSession.last_seen_at)).one()
    clock.advance(minutes=6)
    in_transaction.clear()
    assert client.get("/").status_code == 200
    # One statement that stands alone, committed as it ran (no transaction left open after it).
    assert [(kind, open_) for kind, open_ in in_transaction if kind != "SELECT"] == [("UPDATE", False)]
    session.expire_all()
    after = session.exec(select(DeviceSession.last_seen_at)).one()
    assert after > before


def test_a_write_from_a_reads_only_page_is_refused_and_nothing_is_written(app, world, session):
    with app.test_request_context("/"):
        g.db_reads_only = True
        s = db.session()
        with pytest.raises(ReadsOnlyError):
            # Refused before it reaches the database, whatever it would have done there.
            s.execute(insert(Flag).values(key="reads-only-test", kind="missed_dose", site_id=world.sites["A"].id))
        s.close()
    session.expire_all()
    assert session.exec(select(Flag).where(Flag.key == "reads-only-test")).first() is None


def test_a_post_is_never_reads_only(app):
    # The mark is for pages that read: any other method keeps its unit of work.
    @db.reads_only
    def view():
        return g.get("db_reads_only", False)

    with app.test_request_context("/", method="POST"):
        assert view() is False
    with app.test_request_context("/", method="GET"):
        assert view() is True
