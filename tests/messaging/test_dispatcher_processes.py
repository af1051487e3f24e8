"""Real scheduler processes (`flask scheduler tick|run`) against the Twilio double: killed with
SIGKILL mid-batch, stopped with SIGTERM, and two at once on PostgreSQL."""

import os
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest

from diary.messaging.outbox import enqueue
from diary.models import Site
from diary.sqltypes import utc_now
from tests.messaging.conftest import SENDER

ROOT = Path(__file__).resolve().parents[2]
T0 = datetime(2026, 11, 30, 22, 0, tzinfo=UTC)  # 06:00 in Shanghai: no digest due yet


@pytest.fixture
def env(database_url, twilio, tmp_path):
    return {
        **os.environ, "DATABASE_URL": database_url, "SECRET_KEY": "test-secret-key",
        "DATA_ENCRYPTION_KEY": "test-data-key", "SMS_BACKEND": "twilio",
        "TWILIO_ACCOUNT_SID": twilio.account_sid, "TWILIO_AUTH_TOKEN": twilio.auth_token,
        "TWILIO_FROM": SENDER, "TWILIO_API_BASE_URL": twilio.url, "SMS_RATE_PER_SECOND": "0",
        "SCHEDULER_INTERVAL_SECONDS": "1",
        # Each tick anchors the audit chains: not in the developer's instance/ folder.
        "AUDIT_ANCHOR_PATH": str(tmp_path / "audit-anchors.jsonl"),
    }


@pytest.fixture
def queued(app, session, clock):
    def make(n: int, now: datetime) -> None:
        clock.now = now
        site = Site(code="P", name="Process site", phone="+8613900000009")
        session.add(site)
        session.flush()
        for i in range(n):
            enqueue(session, app.extensions["diary.cipher"], dedupe_key=f"proc:{i}", kind="notice",
                    site_id=site.id, to=f"+86139{i:08d}", body=f"Message {i}", not_before=now, created_at=now)
        session.commit()

    return make


def flask(*args: str, env: dict) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "flask", "--app", "wsgi", "scheduler", *args], cwd=ROOT,
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def wait_until(condition, timeout: float = 30.0) -> None:
    # Waiting for another process is the one place a test has to poll.
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.02)


def assert_each_message_sent_once(sms, twilio, n: int) -> None:
    rows = [m for m in sms.outbox() if m.kind == "notice"]
    assert [m.status for m in rows] == ["sent"] * n
    recipients = [m["to"] for m in twilio.messages]
    assert len(recipients) == len(set(recipients)) == n
    assert {m.provider_id for m in rows} == {m["sid"] for m in twilio.messages}


def test_a_dispatcher_killed_mid_batch_and_restarted_loses_nothing_and_duplicates_nothing(
        sms, queued, twilio, env):
    queued(20, T0)
    twilio.set_latency(0.15)
    first = flask("tick", "--now", T0.isoformat(), env=env)
    wait_until(lambda: len(twilio.messages) >= 6)
    first.send_signal(signal.SIGKILL)
    first.wait()
    twilio.set_latency(0)
    assert 6 <= len(twilio.messages) < 20

    again = flask("tick", "--now", "2026-11-30T22:05:00+00:00", env=env)
    out, err = again.communicate(timeout=60)

    assert again.returncode == 0, err
    assert_each_message_sent_once(sms, twilio, 20)


@pytest.mark.postgres
def test_two_dispatchers_at_once_on_postgresql_duplicate_nothing(backend, sms, queued, twilio, env):
    queued(40, T0)
    twilio.set_latency(0.08)

    both = [flask("tick", "--now", T0.isoformat(), env=env) for _ in range(2)]
    outputs = [p.communicate(timeout=60) for p in both]

    assert [p.returncode for p in both] == [0, 0], outputs
    assert_each_message_sent_once(sms, twilio, 40)
    assert all("'sent'" in out for out, _ in outputs), outputs  # both really dispatched


def test_sigterm_finishes_the_message_in_hand_and_exits(sms, queued, twilio, env):
    queued(30, utc_now())
    twilio.set_latency(0.1)
    process = flask("run", env=env)
    wait_until(lambda: len(twilio.messages) >= 3)

    process.send_signal(signal.SIGTERM)
    process.communicate(timeout=30)

    assert process.returncode == 0
    rows = [m for m in sms.outbox() if m.kind == "notice"]
    assert "sending" not in {m.status for m in rows}
    assert sum(m.status == "sent" for m in rows) == len(twilio.messages) < 30
