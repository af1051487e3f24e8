"""Real scheduler processes against each domestic provider's double: SIGKILL mid-batch loses and
duplicates nothing (issue 13, as test_dispatcher_processes proves for Twilio)."""

import signal
from datetime import UTC, datetime

import pytest
from sqlmodel import Session, select

from diary.messaging import texts
from diary.messaging.outbox import enqueue
from diary.models import Message, Site
from tests.messaging.cn_providers import Provider, process_env, write_templates_toml
from tests.messaging.test_dispatcher_processes import flask, wait_until

T0 = datetime(2026, 11, 30, 22, 0, tzinfo=UTC)  # 06:00 in Shanghai: no digest due yet


@pytest.fixture(params=["tencent", "aliyun"])
def one(request, clock):
    clock.now = T0
    provider = Provider(request.param, clock)
    with provider.double:
        yield provider


def test_a_dispatcher_killed_mid_batch_and_restarted_loses_nothing_and_duplicates_nothing(
        app, session, one, database_url, tmp_path):
    site = Site(code="P", name="Process site", phone="+8613700000009")
    session.add(site)
    session.flush()
    with app.app_context():
        for i in range(20):
            enqueue(session, app.extensions["diary.cipher"], dedupe_key=f"proc:{i}", kind="notice", site_id=site.id,
                    to=f"+86139{i:08d}", body=texts.draw_morning("zh", phone="0591-8888"), not_before=T0,
                    created_at=T0)
    session.commit()
    env = process_env([one], database_url, write_templates_toml(tmp_path / "t.toml", [one.name]), tmp_path)
    # The processes run at --now (days ahead of the wall clock their gateway reads): a message
    # killed before it reached Tencent must not wait the real receipt delay to be resent.
    env["TENCENT_SMS_RECEIPT_WAIT_SECONDS"] = "0"

    one.double.set_latency(0.15)
    first = flask("tick", "--now", T0.isoformat(), env=env)
    wait_until(lambda: len(one.sent()) >= 6)
    first.send_signal(signal.SIGKILL)
    first.wait()
    one.double.set_latency(0)
    assert 6 <= len(one.sent()) < 20

    again = flask("tick", "--now", "2026-11-30T22:05:00+00:00", env=env)
    out, err = again.communicate(timeout=60)

    assert again.returncode == 0, err
    with Session(app.extensions["diary.engine"]) as s:
        rows = s.exec(select(Message).where(Message.kind == "notice").order_by(Message.id)).all()
    assert [m.status for m in rows] == ["sent"] * 20
    recipients = [m["to"] for m in one.sent()]
    assert len(recipients) == len(set(recipients)) == 20
    assert {m.provider for m in rows} == {one.name}
