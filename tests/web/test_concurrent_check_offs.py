"""Issue 11, item 3: ten phones checking off one day at the same instant leave one current record.

Real threads, each with its own HTTP client and database connection, against SQLite and PostgreSQL.
The database keeps one chain of records per (course, day) (uq_doselog_first_record and the unique
supersedes_id); every loser gets the winner's record back, as a replay does, never a 5xx.
"""

import threading
import uuid

from sqlmodel import select

from diary.models import AuditEvent, DoseLog
from diary.services.course_records import is_current

THREADS = 10


def _clients(app, client, auth):
    auth.participant("pa")
    cookie = client.get_cookie("session")
    token = client.get("/sync/csrf").get_json()["csrf_token"]
    clients = []
    for _ in range(THREADS):
        other = app.test_client()
        other.set_cookie(cookie.key, cookie.value, domain=cookie.domain or "localhost")
        clients.append(other)
    return clients, token


def test_ten_concurrent_check_offs_of_one_day_leave_one_current_log(app, client, auth, world, session):
    clients, token = _clients(app, client, auth)
    course = world.courses["pa"]
    barrier = threading.Barrier(THREADS)
    answers: list = [None] * THREADS

    def check_off(n: int) -> None:
        body = {"client_key": str(uuid.uuid4()), "course_id": course.id, "day": 3, "outcome": "taken",
                "taken_at": "2026-12-01T08:10:00+08:00"}
        barrier.wait()
        r = clients[n].post("/sync/dose", json=body, headers={"X-CSRFToken": token})
        answers[n] = (r.status_code, r.get_json())

    threads = [threading.Thread(target=check_off, args=(n,)) for n in range(THREADS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)

    assert [status for status, _ in answers] == [200] * THREADS, answers
    session.expire_all()
    current = session.exec(select(DoseLog).where(DoseLog.course_id == course.id, DoseLog.course_day == 3,
                                                 is_current(DoseLog))).all()
    assert len(current) == 1
    assert {body["id"] for _, body in answers} == {current[0].id}
    assert len(session.exec(select(DoseLog)).all()) == 1
    assert len(session.exec(select(AuditEvent).where(AuditEvent.action == "dose_logged")).all()) == 1
