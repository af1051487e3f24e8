"""Offline sync: a replayed record is written once; stated and received times are both kept (issue 3 §7)."""

import uuid
from datetime import timedelta

import pytest
from sqlmodel import select

from diary.models import Flag, SymptomReport
from tests.web.patient_helpers import csrf, logs


@pytest.fixture
def pa(auth, client, world):
    auth.participant("pa")
    return world.participants["pa"]


def _token(client) -> str:
    return client.get("/sync/csrf").get_json()["csrf_token"]


def _dose(client, world, token=None, **overrides):
    body = {"client_key": str(uuid.uuid4()), "course_id": world.courses["pa"].id, "day": 3,
            "outcome": "taken", "taken_at": "2026-12-01T07:10:00+08:00", "fasting": "yes"} | overrides
    return client.post("/sync/dose", json=body, headers={"X-CSRFToken": token or _token(client)})


def test_a_queued_check_off_is_recorded_with_stated_and_received_time(client, pa, world, session, clock):
    r = _dose(client, world)
    assert r.status_code == 200 and r.get_json()["ok"] is True
    [log] = logs(session)
    assert log.taken_at.isoformat() == "2026-11-30T23:10:00+00:00"
    assert log.received_at == clock.now
    assert (log.fasting, log.source) == ("yes", "participant")


def test_a_replay_of_the_same_key_returns_the_first_record(client, pa, world, session, clock):
    key = str(uuid.uuid4())
    first = _dose(client, world, client_key=key).get_json()
    clock.advance(minutes=3)
    again = _dose(client, world, client_key=key).get_json()
    assert first["id"] == again["id"]
    assert len(logs(session)) == 1


def test_a_check_off_after_the_page_already_recorded_it_adds_nothing(client, pa, world, session):
    _dose(client, world)
    _dose(client, world)
    assert len(logs(session)) == 1


def test_a_dose_time_in_the_future_is_refused(client, pa, world, session):
    r = _dose(client, world, taken_at="2026-12-01T18:00:00+08:00")
    assert r.status_code == 422 and r.get_json()["error"] == "time_in_future"
    assert logs(session) == []


@pytest.mark.parametrize("overrides", [
    {"taken_at": "07:10"}, {"taken_at": "2026-12-01T07:10:00"}, {"day": "3"}, {"course_id": None},
    {"client_key": "x"}, {"client_key": None}, {"outcome": "deleted"}, {"day": 40},
])
def test_malformed_records_are_refused_and_change_nothing(client, pa, world, session, overrides):
    r = _dose(client, world, **overrides)
    assert r.status_code == 422
    assert logs(session) == []


def test_a_body_that_is_not_json_is_a_bad_request(client, pa):
    r = client.post("/sync/dose", data="taken", headers={"X-CSRFToken": _token(client)})
    assert r.status_code == 400


def test_a_record_replayed_after_the_cutoff_is_refused(client, pa, world, session, clock):
    clock.advance(days=2)
    r = _dose(client, world, taken_at="2026-12-01T07:10:00+08:00")
    assert r.status_code == 422 and r.get_json()["error"] == "outside_window"
    assert "study nurse" in r.get_json()["message"]


def test_a_queue_sent_again_after_the_cutoff_gets_its_first_answers_back(client, pa, world, session, clock):
    # The phone sent "taken" then "undo", lost both answers, and sends both again two days later:
    # each is answered with the record it made, not refused as too late, and nothing is added.
    taken, undo = str(uuid.uuid4()), str(uuid.uuid4())
    first = _dose(client, world, client_key=taken).get_json()
    second = _dose(client, world, client_key=undo, outcome="retracted", taken_at=None).get_json()
    clock.advance(days=2)
    again = [_dose(client, world, client_key=taken), _dose(client, world, client_key=undo, outcome="retracted",
                                                              taken_at=None)]
    assert [r.status_code for r in again] == [200, 200]
    assert [r.get_json()["id"] for r in again] == [first["id"], second["id"]]
    assert [log.outcome for log in logs(session)] == ["taken", "retracted"]


def test_a_key_already_used_for_another_day_is_refused(client, pa, world, session):
    key = str(uuid.uuid4())
    assert _dose(client, world, client_key=key).status_code == 200
    r = _dose(client, world, client_key=key, day=2, taken_at="2026-11-30T07:10:00+08:00")
    assert r.status_code == 422 and r.get_json()["error"] == "client_key_reused"
    assert len(logs(session)) == 1


def test_an_undo_can_be_replayed_too(client, pa, world, session):
    _dose(client, world)
    r = _dose(client, world, outcome="retracted", taken_at=None)
    assert r.status_code == 200
    assert [log.outcome for log in logs(session)] == ["taken", "retracted"]


def _report(client, token=None, **overrides):
    body = {"client_key": str(uuid.uuid4()), "symptoms": [{"key": "coughing_blood", "severity": "severe"}],
            "noticed_at": "2026-12-01T06:30:00+08:00", "note": "this morning"} | overrides
    return client.post("/sync/symptoms", json=body, headers={"X-CSRFToken": token or _token(client)})


def test_a_queued_danger_report_is_recorded_once_and_flags_staff_once(client, pa, session, clock):
    key = str(uuid.uuid4())
    first = _report(client, client_key=key).get_json()
    second = _report(client, client_key=key).get_json()
    assert first["danger"] is True and first["id"] == second["id"]
    [report] = session.exec(select(SymptomReport)).all()
    assert report.noticed_at.isoformat() == "2026-11-30T22:30:00+00:00" and report.received_at == clock.now
    assert len(session.exec(select(Flag)).all()) == 1


def test_a_queued_danger_report_without_a_severity_is_recorded_and_flags_staff(client, pa, session):
    r = _report(client, symptoms=[{"key": "coughing_blood", "severity": None}])
    assert r.status_code == 200 and r.get_json()["danger"] is True
    assert session.exec(select(SymptomReport)).one().symptoms == [
        {"key": "coughing_blood", "severity": "not_stated"}]
    assert session.exec(select(Flag)).one().kind == "danger_symptom"


def test_a_symptom_time_ahead_of_the_server_is_brought_back_to_now(client, pa, session, clock):
    _report(client, noticed_at=(clock.now + timedelta(hours=5)).isoformat())
    assert session.exec(select(SymptomReport)).one().noticed_at == clock.now


@pytest.mark.parametrize("overrides", [
    {"symptoms": []}, {"symptoms": "bruising"}, {"symptoms": [{"key": "bruising"}]},
    {"symptoms": [{"key": "nope", "severity": "mild"}]}, {"noticed_at": "tuesday"}, {"client_key": ""},
])
def test_malformed_reports_are_refused_and_change_nothing(client, pa, session, overrides):
    assert _report(client, **overrides).status_code == 422
    assert session.exec(select(SymptomReport)).all() == []
    assert session.exec(select(Flag)).all() == []


def test_the_sync_token_endpoint_is_not_cached(client, pa):
    r = client.get("/sync/csrf")
    assert r.is_json and r.get_json()["csrf_token"]
    assert csrf(client)


def test_a_queued_late_dose_keeps_the_typed_local_time(client, pa, world, session):
    r = _dose(client, world, day=2, taken_at=None, taken_on="2026-11-30", taken_time="21:15")
    assert r.status_code == 200
    assert logs(session)[0].taken_at.isoformat() == "2026-11-30T13:15:00+00:00"
