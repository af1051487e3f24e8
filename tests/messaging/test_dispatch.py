"""The outbox dispatcher against the Twilio double: retries, permanent failures, crashes."""

from datetime import timedelta

import pytest
from sqlmodel import select

from diary.messaging.gateway import TwilioGateway
from diary.messaging.outbox import enqueue
from diary.models import Flag, Message, Site
from diary.scheduling.dispatch import BACKOFF_CAP, Pacer, backoff
from tests.messaging.conftest import SENDER


@pytest.fixture
def site(session):
    site = Site(code="D", name="Dispatch site", phone="+8613900000009")
    session.add(site)
    session.commit()
    return site


@pytest.fixture
def queue(app, session, site, clock):
    """Queue n plain messages (no participant: no quiet hours, no relevance checks)."""

    def make(n: int, *, first: int = 0) -> list[Message]:
        rows = []
        for i in range(first, first + n):
            rows.append(enqueue(session, app.extensions["diary.cipher"], dedupe_key=f"test:{i}", kind="notice",
                                site_id=site.id, to=f"+86139{i:08d}", body=f"Message {i}",
                                not_before=clock.now, created_at=clock.now))
        session.commit()
        return rows

    return make


def notices(sms) -> list[Message]:
    # The site's daily digest is due at this hour too; these tests watch only their own rows.
    return [m for m in sms.outbox() if m.kind == "notice"]


def statuses(sms) -> list[str]:
    return [m.status for m in notices(sms)]


def bodies(twilio) -> list[str]:
    return sorted(m["body"] for m in twilio.messages if m["body"].startswith("Message"))


@pytest.mark.parametrize("status", [429, 500, 503])
def test_a_burst_of_provider_errors_is_retried_until_each_message_is_sent_once(sms, queue, twilio, clock, status):
    queue(3)
    twilio.fail_next(4, status=status)
    sms.tick()
    assert statuses(sms) == ["queued"] * 3

    for _ in range(6):
        clock.advance(minutes=2)
        sms.tick()

    assert statuses(sms) == ["sent"] * 3
    assert bodies(twilio) == ["Message 0", "Message 1", "Message 2"]


def test_a_retry_waits_for_its_backoff(sms, queue, twilio, clock):
    queue(1)
    twilio.fail_next(1, status=429)
    sms.tick()
    clock.advance(seconds=10)
    sms.tick()
    assert bodies(twilio) == []

    clock.advance(minutes=1)
    sms.tick()
    [message] = notices(sms)
    assert (message.status, message.attempts) == ("sent", 2)


def test_retries_stop_after_the_retry_window_and_raise_a_flag(sms, queue, twilio, clock, session):
    [message] = queue(1)
    twilio.fail_next(1000, status=500)
    for _ in range(30):
        sms.tick()
        clock.advance(minutes=10)

    [row] = notices(sms)
    assert row.status == "failed" and bodies(twilio) == []
    assert session.exec(select(Flag.kind).where(Flag.key == f"sms_failed:{message.id}")).one() == "sms_failed"


def test_an_invalid_number_fails_at_once_is_flagged_and_never_retried(sms, queue, twilio, clock, session):
    [message] = queue(1)
    twilio.reject("+8613900000000", code=21211)
    sms.tick()
    clock.advance(hours=1)
    sms.tick()

    [row] = notices(sms)
    assert (row.status, row.attempts) == ("failed", 1)
    assert "invalid 'To' number" in row.last_error and "+8613900000000" not in row.last_error
    assert session.exec(select(Flag.kind).where(Flag.key == f"sms_failed:{message.id}")).one() == "sms_failed"


def test_one_bad_row_is_pushed_back_and_the_others_are_sent(sms, queue, session, clock):
    bad, *good = queue(3)
    bad.to_enc = b"not a fernet token"
    session.add(bad)
    session.commit()

    summary = sms.tick()

    assert statuses(sms) == ["queued", "sent", "sent"]
    assert notices(sms)[0].next_attempt_at > clock.now and summary["dispatch"]["errors"] == 1


def test_a_row_left_sending_by_a_crash_after_the_provider_accepted_is_not_sent_again(
        sms, queue, twilio, gateway, clock, session):
    [message] = queue(1)
    sid = gateway.send("+8613900000000", "Message 0")  # accepted, then the dispatcher died
    message.status, message.claimed_at, message.attempts = "sending", clock.now, 1
    session.add(message)
    session.commit()

    clock.advance(seconds=60)
    sms.tick()  # within the sending timeout: another dispatcher may still be in the call
    assert statuses(sms) == ["sending"]
    clock.advance(minutes=3)
    sms.tick()

    [row] = notices(sms)
    assert (row.status, row.provider_id) == ("sent", sid)
    assert bodies(twilio) == ["Message 0"]


def test_a_row_left_sending_by_a_crash_before_the_provider_got_it_is_sent_once(sms, queue, twilio, clock, session):
    [message] = queue(1)
    message.status, message.claimed_at = "sending", clock.now
    session.add(message)
    session.commit()

    clock.advance(minutes=3)
    sms.tick()
    sms.tick()

    assert statuses(sms) == ["sent"] and bodies(twilio) == ["Message 0"]


def test_a_timeout_is_reconciled_with_the_provider_instead_of_resent(app, sms, queue, twilio, clock):
    queue(1)
    app.extensions["diary.gateway"] = TwilioGateway(twilio.account_sid, twilio.auth_token, from_number=SENDER,
                                                    api_base_url=twilio.url, timeout=1.0)
    # The timeout leaves room for a loaded machine: the reconciling look-up uses it too.
    twilio.set_latency(2.5)
    sms.tick()
    twilio.set_latency(0)
    assert statuses(sms) == ["sending"]

    clock.advance(minutes=3)
    sms.tick()

    assert statuses(sms) == ["sent"] and bodies(twilio) == ["Message 0"]


def test_the_dispatcher_asks_for_delivery_reports_when_the_public_url_is_known(app, sms, queue, twilio):
    [message] = queue(1)
    app.config["PUBLIC_BASE_URL"] = "https://diary.example"

    sms.tick()

    [sent] = [m for m in twilio.messages if m["body"] == "Message 0"]
    assert sent["status_callback"] == f"https://diary.example/sms/status?m={message.id}"


def test_the_pacer_spaces_sends_to_the_configured_rate():
    moments, now = [], [0.0]

    def sleep(seconds):
        now[0] += seconds

    pacer = Pacer(4, monotonic=lambda: now[0], sleep=sleep)
    for _ in range(5):
        pacer.wait()
        moments.append(now[0])

    assert moments == [0.0, 0.25, 0.5, 0.75, 1.0]


def test_backoff_grows_exponentially_with_jitter_and_is_capped():
    assert backoff(1, rng=lambda: 0) == timedelta(seconds=15)
    assert backoff(1, rng=lambda: 1) == timedelta(seconds=30)
    assert backoff(3, rng=lambda: 1) == timedelta(minutes=2)
    assert backoff(20, rng=lambda: 1) == BACKOFF_CAP


def test_the_pacer_makes_up_for_a_slow_send_without_flooding_after_a_stall():
    now = [0.0]
    pacer = Pacer(10, monotonic=lambda: now[0], sleep=lambda seconds: now.__setitem__(0, now[0] + seconds))
    pacer.wait()
    now[0] += 0.15  # one send took a slot and a half
    pacer.wait()
    assert now[0] == pytest.approx(0.15)  # no wait: its slot (0.1) has passed
    pacer.wait()
    assert now[0] == pytest.approx(0.2)  # back on the 10/s schedule

    now[0] += 60  # a long stall
    moments = []
    for _ in range(5):
        pacer.wait()
        moments.append(round(now[0] - 60.2, 3))
    assert moments == [0.0, 0.0, 0.0, 0.0, 0.1]  # at most `burst` slots made up
