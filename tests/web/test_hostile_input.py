"""Hostile input never gives a 5xx (issue 11, item 5): every route, every form field, every JSON key.

The sweep walks the app's own URL map, so a route added later is swept too. Each route is asked
with hostile path ids, hostile query arguments and a form (or JSON body) where every field the
templates name carries the same hostile value: very long, a NUL byte, Unicode digits, numbers out
of range, wrong types.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from sqlmodel import select

from diary.models import DoseLog, SymptomReport
from tests.web.staff_helpers import site_a_rows

ROOT = Path(__file__).resolve().parents[2]
HOSTILE = [
    "x" * 20_000,               # very long
    "08:00\x00",                # a NUL byte: PostgreSQL refuses it in text
    "²",                        # a Unicode digit: str.isdigit() says yes, int() says no
    "١٢",                       # Arabic-Indic digits: int() says 12
    str(2**64),                 # above 64 bits
    str(2**31),                 # above the schema's INTEGER
    "-1",
    "1e309",                    # float("1e309") is inf
    "NaN",
    "",
]
JSON_HOSTILE = [2**64, 2**31, -(2**63) - 1, float("inf"), float("nan"), 1.5, [], {}, None, True,
                "x" * 20_000, "a\x00b", "²"]
QUERY_ARGS = ("course", "site", "lab", "day", "page", "m", "state", "kind", "show", "q", "next", "lang", "cohort")


def _form_field_names() -> list[str]:
    """Every field name a template or form class posts (name="..."), plus the ones views read by hand."""
    names = set()
    for path in list((ROOT / "templates").rglob("*.html")) + list((ROOT / "diary").rglob("*.py")):
        text = path.read_text(encoding="utf-8")
        names.update(re.findall(r'name="([a-z][a-z0-9_]*)"', text))
        if path.suffix == ".py":
            names.update(re.findall(r"^\s+([a-z][a-z0-9_]*) = \w+Field\(", text, re.MULTILINE))
    names.update({"lab_id", "effective_day", "note", "reason", "client_key", "sym-bruising", "answer-age",
                  "severity-bruising", "symptom", "taken_time", "taken_on", "Body", "From", "MessageSid"})
    names.discard("csrf_token")
    return sorted(names)


FIELDS = _form_field_names()
JSON_KEYS = ("client_key", "course_id", "day", "outcome", "taken_at", "taken_on", "taken_time", "reason",
             "fasting", "symptoms", "noticed_at", "note")


@pytest.fixture
def rows(app, session, world, clock):
    return site_a_rows(app, session, world, clock)


def _routes(app, blueprints):
    for rule in app.url_map.iter_rules():
        if rule.endpoint.split(".")[0] in blueprints:
            yield rule


def _paths(rule, ids):
    """The rule with real ids, and with each id argument replaced by hostile ones."""
    real = {name: ids.get(name, 1) for name in rule.arguments}
    yield _build(rule, real)
    for name in rule.arguments:
        for bad in (str(2**64), str(2**31), "²", "0"):
            yield _build(rule, real | {name: bad})


def _build(rule, values):
    path = rule.rule
    for name, value in values.items():
        path = re.sub(r"<(?:\w+:)?" + name + ">", str(value), path)
    return path


def _sweep(app, client, blueprints, ids):
    app.config["WTF_CSRF_ENABLED"] = False  # after signing in: the sweep is about what views do
    failures = []
    for rule in _routes(app, blueprints):
        methods = rule.methods - {"HEAD", "OPTIONS"}
        for path in _paths(rule, ids):
            for value in HOSTILE:
                query = {arg: value for arg in QUERY_ARGS}
                calls = []
                if "GET" in methods:
                    calls.append(("GET", lambda p=path, q=query: client.get(p, query_string=q)))
                if "POST" in methods:
                    form = {name: value for name in FIELDS}
                    calls.append(("POST", lambda p=path, f=form: client.post(p, data=f)))
                for method, call in calls:
                    try:
                        status = call().status_code
                    except Exception as exc:  # noqa: BLE001 - an unhandled error is the finding
                        failures.append((method, path, repr(value)[:30], repr(exc)[:160]))
                        continue
                    if status >= 500:
                        failures.append((method, path, repr(value)[:30], status))
    return failures


def test_no_staff_route_answers_5xx_to_hostile_input(app, client, auth, world, rows):
    auth.staff("admin")
    ids = {"course_id": rows.course_id, "lab_id": rows.lab_id, "flag_id": rows.flag_id,
           "screening_id": rows.screening_id, "report_id": rows.report_id,
           "participant_id": world.participants["pa"].id}
    assert _sweep(app, client, {"staff"}, ids) == []


def test_no_participant_route_answers_5xx_to_hostile_input(app, client, auth, world, rows):
    auth.participant("pa")
    ids = {"course_id": world.courses["pa"].id, "day": 3}
    assert _sweep(app, client, {"patient"}, ids) == []


def test_no_sign_in_route_answers_5xx_to_hostile_input(app, client, world, rows):
    # /health is left out: its 503 for a stale scheduler is its answer, not a failure.
    assert _sweep(app, client, {"auth"}, {"token": "x"}) == []


@pytest.mark.parametrize("endpoint", ["/sync/dose", "/sync/symptoms"])
def test_no_sync_endpoint_answers_5xx_to_hostile_json(app, client, auth, world, rows, endpoint):
    auth.participant("pa")
    good = {"client_key": "k-1", "course_id": world.courses["pa"].id, "day": 3, "outcome": "taken",
            "taken_at": "2026-12-01T07:10:00+08:00", "symptoms": [{"key": "bruising", "severity": "mild"}]}
    app.config["WTF_CSRF_ENABLED"] = False
    failures = []
    for key in JSON_KEYS:
        for value in JSON_HOSTILE:
            body = good | {key: value, "client_key": f"k-{key}-{len(failures)}-{abs(hash(repr(value)))}"[:60]}
            if key == "client_key":
                body["client_key"] = value
            r = client.post(endpoint, json=body)
            if r.status_code >= 500:
                failures.append((key, repr(value)[:30], r.status_code))
    for raw in (b"[1, 2]", b"{", b'"x"', b"null", b'{"course_id": 1' + b"0" * 5000 + b"}"):
        r = client.post(endpoint, data=raw, content_type="application/json")
        if r.status_code >= 500:
            failures.append(("raw", raw[:20], r.status_code))
    assert failures == []


def test_a_unicode_digit_course_is_not_found(client, auth, world):
    auth.participant("pa")
    assert client.get("/calendar?course=²").status_code == 404
    assert client.get(f"/calendar?course={2**64}").status_code == 404


def test_an_id_above_64_bits_in_a_url_is_not_found(client, auth, world):
    auth.staff("admin")
    assert client.get(f"/staff/participants/{2**64}").status_code == 404
    auth.participant("pa")
    assert client.get(f"/courses/{2**64}/days/3").status_code == 404


def test_an_id_above_64_bits_in_a_json_body_is_refused(client, auth, world, session):
    auth.participant("pa")
    r = client.post("/sync/dose", json={"client_key": "k-big", "course_id": 2**64, "day": 3, "outcome": "taken",
                                        "taken_at": "2026-12-01T07:10:00+08:00"})
    assert 400 <= r.status_code < 500
    assert session.exec(select(DoseLog)).all() == []


def test_a_nul_byte_in_a_synced_note_is_refused_with_a_message_and_stores_nothing(client, auth, world, session):
    auth.participant("pa")
    token = client.get("/sync/csrf").get_json()["csrf_token"]
    r = client.post("/sync/symptoms", headers={"X-CSRFToken": token}, json={
        "client_key": "k-nul-note", "note": "blood\x00", "symptoms": [{"key": "bruising", "severity": "mild"}]})
    assert r.status_code == 400
    assert r.get_json()["message"].startswith("Your entry contains a character that cannot be saved")
    assert session.exec(select(SymptomReport)).all() == []


def test_a_nul_byte_in_a_form_is_refused_in_the_participants_language(client, auth, world, session):
    auth.participant("pa")
    r = client.post("/symptoms", data={"csrf_token": auth.csrf("/symptoms"), "symptom": "bruising",
                                       "severity-bruising": "mild", "note": "x\x00"})
    assert r.status_code == 400
    assert "Your entry contains a character that cannot be saved" in r.get_data(as_text=True)
    assert session.exec(select(SymptomReport)).all() == []
