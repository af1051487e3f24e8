"""Idempotent endpoints answer a concurrent replay with the first result, never 5xx (issue 11, item 4)."""

from __future__ import annotations

import uuid

from sqlmodel import select

from diary.models import AuditEvent, SymptomReport
from tests.web.race_helpers import at_once


def _as_pa(auth, client):
    """The signed-in participant's cookies and sync token, to copy onto the other threads' clients."""
    auth.participant("pa")
    cookies = {name: client.get_cookie(name).value for name in ("session", "remember_token") if client.get_cookie(name)}
    return cookies, client.get("/sync/csrf").get_json()["csrf_token"]


def test_concurrent_replays_of_one_symptom_report_all_get_the_first_report(app, auth, client, world, session):
    cookies, token = _as_pa(auth, client)
    body = {"client_key": str(uuid.uuid4()), "symptoms": [{"key": "bruising", "severity": "mild"}],
            "noticed_at": "2026-12-01T08:30:00+08:00"}

    def replay(c):
        for name, value in cookies.items():
            c.set_cookie(name, value)
        return c.post("/sync/symptoms", json=body, headers={"X-CSRFToken": token})

    answers = at_once(app, [replay] * 10)
    assert [r.status_code for r in answers] == [200] * 10, [r.get_data(as_text=True)[:200] for r in answers]
    [report] = session.exec(select(SymptomReport)).all()
    assert {r.get_json()["id"] for r in answers} == {report.id}
    assert len(session.exec(select(AuditEvent).where(AuditEvent.action == "symptoms_reported")).all()) == 1
