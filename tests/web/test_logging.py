"""One logging configuration (issue 14, item 3): JSON lines in production, a request id on every
line and in the response, the phone-number redaction on the root handler, and no personal data
in any line of a full demo run."""

from __future__ import annotations

import json
import logging
import os
import re
import signal
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path
from urllib.request import Request, urlopen

import pyotp
import pytest
from sqlmodel import select

from diary import logs, scheduling
from diary.demo import DEMO_PIN, NURSE_TOTP, PASSWORD
from diary.messaging.gateway import TwilioGateway
from diary.models import Flag, Message, Participant
from diary.sqltypes import utc_now
from tests.conftest import csrf_from
from tests.fakes.twilio_double import TwilioDouble

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def json_logs(app):
    """The root handler as production sets it up (JSON lines), at DEBUG to let everything through."""
    app.config["LOG_FORMAT"] = "json"
    logs.configure(app, replace=True)
    root = logging.getLogger()
    level = root.level
    root.setLevel(logging.DEBUG)
    yield
    root.setLevel(level)
    app.config["LOG_FORMAT"] = "text"
    logs.configure(app, replace=True)


def _lines(err: str) -> list[dict]:
    # Every line our handler writes is one JSON object (pytest's own log capture writes nothing here).
    return [json.loads(line) for line in err.splitlines() if line.strip()]


@pytest.mark.any_db
def test_each_response_carries_a_request_id_and_keeps_a_sane_inbound_one(client):
    generated = client.get("/login").headers["X-Request-ID"]
    assert re.fullmatch(r"[0-9a-f]{32}", generated)
    assert client.get("/login").headers["X-Request-ID"] != generated
    assert client.get("/login", headers={"X-Request-ID": "edge-7f3a9c21"}).headers["X-Request-ID"] == "edge-7f3a9c21"
    # A forged log line or an endless id is not echoed.
    for hostile in ("abc level=ERROR msg=forged", "x" * 500, "short", "<script>alert(1)</script>"):
        assert client.get("/login", headers={"X-Request-ID": hostile}).headers["X-Request-ID"] != hostile


@pytest.mark.any_db
def test_log_lines_are_json_with_the_request_id_of_their_request(client, json_logs, capsys, world):
    capsys.readouterr()
    r = client.get("/no-such-page", headers={"X-Request-ID": "probe-12345678"})
    lines = _lines(capsys.readouterr().err)
    access = [line for line in lines if line["logger"] == "diary.access"]
    assert r.headers["X-Request-ID"] == "probe-12345678"
    assert access and access[-1]["request_id"] == "probe-12345678"
    assert access[-1]["status"] == 404 and access[-1]["endpoint"] == "-"
    assert "no-such-page" not in json.dumps(lines)  # the endpoint, never the path


@pytest.mark.any_db
def test_a_phone_number_in_any_loggers_message_is_masked_at_the_root_handler(app, json_logs, capsys):
    capsys.readouterr()
    logging.getLogger("some.library").warning("sending to %s failed", "+8613812345678")
    [line] = [line for line in _lines(capsys.readouterr().err) if line["logger"] == "some.library"]
    assert "13812345678" not in line["msg"] and "***5678" in line["msg"]


def test_a_full_demo_run_writes_no_personal_data_to_the_logs(app, client, runner, clock, json_logs, capsys,
                                                             session):
    """Seed the demo, sign in and act as a participant and a nurse, text in and out through the
    Twilio double, run the scheduler: every log line is valid JSON and names nobody."""
    clock.now = utc_now()  # the demo seeds around the real date
    capsys.readouterr()
    seeded = runner.invoke(args=["demo"])
    assert seeded.exit_code == 0, seeded.output
    tokens = re.findall(r"/activate/([A-Za-z0-9_-]+)", seeded.output)
    secrets = {PASSWORD, NURSE_TOTP, *tokens}
    phones = {cipher_phone for cipher_phone in re.findall(r"\+86\d{11}", seeded.output)}
    assert phones and tokens
    names = {"Nurse Lin", "Dr Chen", "Data Manager Wu", "Nurse Zhao", "nurse@demo.test"}
    notes = {"blurry vision since the weekend", "Called her daughter back", "My daughter Mei says the bruises grew"}

    with TwilioDouble(clock=clock) as twilio:
        app.config.update(SMS_BACKEND="twilio", TWILIO_ACCOUNT_SID=twilio.account_sid,
                          TWILIO_AUTH_TOKEN=twilio.auth_token, TWILIO_FROM="+15005550006",
                          TWILIO_API_BASE_URL=twilio.url, SMS_RATE_PER_SECOND=0,
                          PUBLIC_BASE_URL="http://localhost")
        app.extensions["diary.gateway"] = TwilioGateway(twilio.account_sid, twilio.auth_token,
                                                        from_number="+15005550006", api_base_url=twilio.url)
        secrets.add(twilio.auth_token)

        # A participant activates with a PIN of their own, then DEMO-002 signs in and uses the diary.
        new_pin = "97531"
        secrets.add(new_pin)
        link = f"/activate/{tokens[0]}"
        r = client.post(link, data={"csrf_token": csrf_from(client, link), "pin": new_pin, "pin_confirm": new_pin})
        assert r.status_code in (302, 303), r.get_data(as_text=True)
        client.post("/logout", data={"csrf_token": csrf_from(client, "/")})
        demo_002 = "+8613800000002"
        r = client.post("/login", data={"csrf_token": csrf_from(client, "/login"), "phone": demo_002,
                                        "pin": DEMO_PIN})
        assert r.status_code == 302
        client.get("/")
        client.get("/calendar")
        danger = next(s.key for s in app.extensions["diary.study"].symptoms if s.danger)
        r = client.post("/symptoms", data={"csrf_token": csrf_from(client, "/symptoms"), "client_key": uuid.uuid4().hex,
                                           "symptom": danger, f"severity-{danger}": "severe",
                                           "note": "blurry vision since the weekend"})
        assert r.status_code == 200
        client.post("/symptoms", data={"csrf_token": "stale", "note": "blurry vision since the weekend"})
        client.get("/courses/999999/days/1")  # a 404
        client.post("/logout", data={"csrf_token": csrf_from(client, "/")})
        # A stranger asks for a PIN code for an enrolled number.
        client.post("/pin/forgot", data={"csrf_token": csrf_from(client, "/pin/forgot"), "phone": demo_002})
        client.post("/login", data={"csrf_token": csrf_from(client, "/login"), "phone": demo_002, "pin": "0000"})

        # A free-text SMS from a participant, signed as Twilio would.
        form, headers = twilio.inbound_request("http://localhost/sms/inbound", demo_002,
                                               "My daughter Mei says the bruises grew")
        assert client.post("/sms/inbound", data=form, headers=headers).status_code == 200
        forged = dict(form, Body="1")
        assert client.post("/sms/inbound", data=forged, headers=headers).status_code == 403

        # The scheduler sends everything queued (danger alert, PIN code, replies) through "Twilio".
        assert list(scheduling.tick(app, clock.now))
        sent = list(twilio.messages)
        assert sent
        secrets.update(re.findall(r"\b\d{6}\b", " ".join(m["body"] for m in sent if "code" in m["body"])))
        for message in sent:
            url, callback, signature = twilio.status_callback_request(message["sid"], "delivered")
            client.post("/sms/status", data=callback, headers=signature)

        # A nurse signs in and works the danger flag.
        r = client.post("/staff/login", data={"csrf_token": csrf_from(client, "/staff/login"),
                                              "email": "nurse@demo.test", "password": PASSWORD})
        assert r.status_code == 302
        code = pyotp.TOTP(NURSE_TOTP).at(clock.now)
        secrets.add(code)
        r = client.post("/staff/login/code", data={"csrf_token": csrf_from(client, "/staff/login/code"),
                                                   "code": code})
        assert r.status_code == 302
        client.get("/staff/")
        client.get("/staff/flags")
        flag = session.exec(select(Flag).where(Flag.kind == "danger_symptom")).first()
        participant = session.get(Participant, flag.participant_id)
        client.get(f"/staff/participants/{participant.id}")
        token = csrf_from(client, "/staff/flags")
        for _ in range(2):  # the second answer: already acknowledged
            client.post(f"/staff/flags/{flag.id}/acknowledge", data={"csrf_token": token,
                                                                    "note": "Called her daughter back"},
                        headers={"HX-Request": "true"})
        client.get("/staff/export")  # a nurse: 403
        client.get("/health")

    err = capsys.readouterr().err
    lines = _lines(err)
    assert len(lines) > 30
    assert all(line["request_id"] != "-" for line in lines if line["logger"] != "diary.config")
    # The webhook's and the gateway's lines are there now, not lost.
    loggers = {line["logger"] for line in lines}
    assert {"diary.access", "diary.messaging.webhooks", "diary.messaging.gateway"} <= loggers
    text = "\n".join(json.dumps({k: v for k, v in line.items() if k not in ("ts", "request_id", "pid")},
                                ensure_ascii=False) for line in lines)
    cookies = {cookie.value for cookie in client._cookies.values()}
    leaks = [word for word in names | notes | secrets | cookies if word and _contains(text, word)]
    leaks += [phone for phone in phones if phone[3:] in text or phone[1:] in text]
    assert leaks == [], f"personal data in the logs: {leaks}"
    assert session.exec(select(Message)).first() is not None


def _contains(text: str, word: str) -> bool:
    # Digits must stand alone (a PIN's digits may occur inside a duration or a count).
    if word.isdigit():
        return re.search(rf"(?<![\d.]){word}(?![\d.])", text) is not None
    return word in text


def _serve_one_request(database_url: str, tmp_path, *extra: str):
    """Run gunicorn with the repository's gunicorn.conf.py, GET /login once, stop it; its stderr lines."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    env = dict(os.environ, DIARY_ENV="production", SECRET_KEY="k" * 32, DATA_ENCRYPTION_KEY="d" * 32,
               DATABASE_URL=database_url, SESSION_COOKIE_SECURE="false", RATELIMIT_ENABLED="false")
    err = tmp_path / "stderr.txt"
    with err.open("w") as stderr:
        proc = subprocess.Popen([sys.executable, "-m", "gunicorn", "--workers", "1", "--bind", f"127.0.0.1:{port}",
                                 *extra, "wsgi:app"], cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=stderr)
    try:
        # gunicorn listens once the app is built (preload_app): up to a minute on a busy machine.
        for _ in range(600):
            try:
                with urlopen(Request(f"http://127.0.0.1:{port}/login", headers={"X-Request-ID": "gunicorn-probe-1"}),
                             timeout=2) as r:
                    assert r.headers["X-Request-ID"] == "gunicorn-probe-1"
                break
            except OSError:
                time.sleep(0.1)
        time.sleep(0.3)
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=10)
    return [line for line in err.read_text().splitlines() if line.strip()]


@pytest.mark.any_db
def test_gunicorn_workers_log_through_the_one_configuration(database_url, tmp_path):
    """Under gunicorn, where nothing configured logging before, every line comes out as JSON, the
    app's with their request ids."""
    lines = _serve_one_request(database_url, tmp_path)
    ours = [json.loads(line) for line in lines]  # every line, gunicorn's own too (gunicorn.conf.py)
    assert any(line["logger"] == "gunicorn.error" and "Booting worker" in line["msg"] for line in ours)
    assert any(line["logger"] == "diary.access" and line["request_id"] == "gunicorn-probe-1"
               and line["endpoint"] == "auth.participant_login" and line["process"] == "web" for line in ours), ours


@pytest.mark.any_db
def test_gunicorns_own_access_log_is_written_when_an_operator_asks_for_one(database_url, tmp_path):
    # gunicorn builds its access line only for --access-logfile (gunicorn.conf.py); asked for, it is there.
    access = tmp_path / "access.log"
    lines = _serve_one_request(database_url, tmp_path, "--access-logfile", str(access))
    assert any(json.loads(line)["logger"] == "diary.access" for line in lines)
    assert '"GET /login HTTP/1.1" 200' in access.read_text()


@pytest.mark.any_db
def test_the_development_servers_request_lines_with_raw_paths_are_dropped(app, json_logs, capsys):
    capsys.readouterr()
    werkzeug = logging.getLogger("werkzeug")
    werkzeug.info('127.0.0.1 - - [26/Nov/2026 22:00:00] "%s" %s %s', "GET /activate/SECRET-TOKEN HTTP/1.1", 200, "-")
    werkzeug.info(" * Running on http://127.0.0.1:5000")
    text = capsys.readouterr().err
    assert "SECRET-TOKEN" not in text and "Running on" in text
