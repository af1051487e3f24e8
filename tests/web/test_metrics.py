"""GET /metrics (issue 14, item 9): Prometheus' format, a bearer token or loopback only, requests by
endpoint, the outbox by status, sends by provider, the scheduler's tick and heartbeat, open flags."""

from __future__ import annotations

from datetime import timedelta

import pytest
from prometheus_client.parser import text_string_to_metric_families

from diary import db
from diary.config import load_settings
from diary.messaging import outbox
from diary.messaging.gateway import TwilioGateway
from diary.scheduling import heartbeat, run_jobs
from diary.scheduling.context import Jobs
from diary.services.flags import acknowledge, raise_flag
from tests.fakes.twilio_double import TwilioDouble


def scrape(client, **headers) -> dict[tuple[str, tuple], float]:
    r = client.get("/metrics", headers=headers)
    assert r.status_code == 200, r.status_code
    assert r.headers["Content-Type"].startswith("text/plain; version=")
    values = {}
    for family in text_string_to_metric_families(r.get_data(as_text=True)):
        for sample in family.samples:
            values[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return values


def value(samples, name: str, **labels) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


@pytest.mark.any_db
def test_without_a_token_only_the_machine_itself_is_answered(client):
    assert client.get("/metrics").status_code == 200  # the test client is 127.0.0.1
    outsider = client.get("/metrics", environ_overrides={"REMOTE_ADDR": "10.0.0.7"})
    assert outsider.status_code == 403 and b"diary_" not in outsider.data


@pytest.mark.any_db
def test_with_a_token_every_caller_needs_it_even_the_machine_itself(app, client):
    app.config["METRICS_TOKEN"] = "scrape-secret-2026"
    assert client.get("/metrics").status_code == 403
    assert client.get("/metrics", headers={"Authorization": "Bearer wrong"}).status_code == 403
    assert client.get("/metrics", headers={"Authorization": "Bearer scrape-secret-2026"},
                      environ_overrides={"REMOTE_ADDR": "10.0.0.7"}).status_code == 200


@pytest.mark.any_db
def test_the_token_can_come_from_a_file_like_other_secrets(tmp_path):
    secret = tmp_path / "metrics_token"
    secret.write_text("from-a-file\n")
    assert load_settings({"METRICS_TOKEN_FILE": str(secret)}, instance_path=str(tmp_path))["METRICS_TOKEN"] \
        == "from-a-file"


@pytest.mark.any_db
def test_requests_are_counted_and_timed_by_endpoint_never_by_path(client):
    before = scrape(client)
    for _ in range(3):
        client.get("/login")
    client.get("/activate/some-secret-token")
    client.get("/no/such/page")
    after = scrape(client)
    login = {"endpoint": "auth.participant_login", "method": "GET", "status": "200"}
    assert value(after, "diary_http_requests_total", **login) - value(before, "diary_http_requests_total",
                                                                      **login) == 3
    assert value(after, "diary_http_request_duration_seconds_count", endpoint="auth.participant_login") - \
        value(before, "diary_http_request_duration_seconds_count", endpoint="auth.participant_login") == 3
    unmatched = {"endpoint": "unmatched", "method": "GET", "status": "404"}
    assert value(after, "diary_http_requests_total", **unmatched) > value(before, "diary_http_requests_total",
                                                                          **unmatched)
    text = client.get("/metrics").get_data(as_text=True)
    assert "some-secret-token" not in text and "/no/such/page" not in text


def test_outbox_flags_and_scheduler_figures_come_from_the_database(app, client, session, world, clock):
    cipher = app.extensions["diary.cipher"]
    site = world.sites["A"].id
    for n in range(2):
        outbox.enqueue(session, cipher, dedupe_key=f"m{n}", kind="reminder", site_id=site, to="+8613800001111",
                       body="Reminder", not_before=clock.now)
    flag = raise_flag(session, key="k1", kind="missed_dose", site_id=site, participant_id=None,
                      detail="x", now=clock.now)
    raise_flag(session, key="k2", kind="danger_symptom", site_id=site, participant_id=None, detail="x", now=clock.now)
    raise_flag(session, key="k3", kind="danger_symptom", site_id=site, participant_id=None, detail="x", now=clock.now)
    session.commit()
    acknowledge(session, flag=flag, staff_id=world.staff["nurse_a"].id, note="done", now=clock.now)
    heartbeat.record(session, clock.now - timedelta(seconds=90), 1500, {})
    session.commit()

    samples = scrape(client)
    assert value(samples, "diary_outbox_messages", status="queued") == 2
    assert value(samples, "diary_open_flags", kind="danger_symptom") == 2
    assert value(samples, "diary_open_flags", kind="missed_dose") == 0
    assert value(samples, "diary_scheduler_heartbeat_age_seconds") == 90
    assert value(samples, "diary_scheduler_tick_duration_seconds") == 1.5


def test_sends_and_failures_are_counted_by_provider(app, client, session, world, clock):
    cipher = app.extensions["diary.cipher"]
    site = world.sites["A"].id
    before = scrape(client)
    with TwilioDouble(clock=clock) as twilio:
        gateway = TwilioGateway(twilio.account_sid, twilio.auth_token, from_number="+15005550006",
                                api_base_url=twilio.url)
        twilio.reject("+8613800009999", code=21610)
        for n, phone in enumerate(("+8613800001111", "+8613800009999")):
            outbox.enqueue(session, cipher, dedupe_key=f"s{n}", kind="reminder", site_id=site, to=phone,
                           body="Reminder", not_before=clock.now)
        session.commit()
        with app.app_context():
            run_jobs(app.extensions["diary.engine"], Jobs.from_app(app, gateway=gateway), clock.now)
        accepted = len(twilio.messages)  # ours and whatever the tick planned for the world's courses
    after = scrape(client)

    def delta(**labels):
        return value(after, "diary_sms_sends_total", **labels) - value(before, "diary_sms_sends_total", **labels)

    assert accepted >= 1 and delta(provider="twilio", outcome="sent") == accepted
    assert delta(provider="twilio", outcome="failed") == 1
    assert value(after, "diary_outbox_messages", status="failed") == 1


@pytest.mark.any_db
def test_with_the_database_down_the_scrape_still_answers_and_says_so(app, client, tmp_path):
    client.get("/login")
    working = app.extensions["diary.engine"]
    app.extensions["diary.engine"] = db.make_engine(f"sqlite:///{tmp_path}/missing/dir/db.sqlite3")
    try:
        samples = scrape(client)
    finally:
        app.extensions["diary.engine"].dispose()
        app.extensions["diary.engine"] = working
    assert value(samples, "diary_database_up") == 0
    assert any(name == "diary_http_requests_total" for name, _labels in samples)
    assert value(scrape(client), "diary_database_up") == 1


@pytest.mark.any_db
def test_with_a_shared_directory_every_gunicorn_worker_is_counted(database_url, tmp_path):
    """Two workers answer in turn; one scrape adds up both (prometheus_client's multiprocess mode)."""
    import os
    import socket
    import subprocess
    import sys
    import time
    from concurrent.futures import ThreadPoolExecutor
    from pathlib import Path
    from urllib.request import urlopen

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    shared = tmp_path / "metrics"
    shared.mkdir()
    env = dict(os.environ, DATABASE_URL=database_url, SECRET_KEY="k" * 32, DATA_ENCRYPTION_KEY="d" * 32,
               RATELIMIT_ENABLED="false", LOG_LEVEL="WARNING", PROMETHEUS_MULTIPROC_DIR=str(shared))
    proc = subprocess.Popen([sys.executable, "-m", "gunicorn", "--workers", "2", "--bind", f"127.0.0.1:{port}",
                             "wsgi:app"], cwd=Path(__file__).resolve().parents[2], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        # gunicorn listens once the app is built (preload_app): up to a minute on a busy machine.
        for _ in range(600):
            try:
                urlopen(f"http://127.0.0.1:{port}/login", timeout=2).read()
                break
            except OSError:
                time.sleep(0.1)
        # A readiness probe that timed out on a loaded machine may still have been answered: count
        # from what the workers say now, not from the number of probes.
        def served(text: str) -> float:
            samples = {(s.name, tuple(sorted(s.labels.items()))): s.value
                       for family in text_string_to_metric_families(text) for s in family.samples}
            return value(samples, "diary_http_requests_total", endpoint="auth.participant_login", method="GET",
                         status="200")

        before = served(urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5).read().decode())
        # At once, so that while one worker is busy the other answers; on a loaded machine one worker
        # may take a whole round, so rounds go on until both have written their counters.
        sent = 0
        for _round in range(20):
            with ThreadPoolExecutor(max_workers=6) as pool:
                list(pool.map(lambda _: urlopen(f"http://127.0.0.1:{port}/login", timeout=10).read(), range(40)))
            sent += 40
            if len(list(shared.glob("counter_*.db"))) >= 2:
                break
        text = urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5).read().decode()
    finally:
        proc.terminate()
        proc.wait(timeout=10)
    assert before >= 1  # the readiness probe
    assert served(text) == before + sent
    assert len(list(shared.glob("counter_*.db"))) == 2  # both workers wrote their counters
