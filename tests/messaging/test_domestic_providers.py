"""Tencent Cloud SMS and Alibaba Cloud SMS, each through its official SDK against an HTTP double
that verifies the provider's request signature: what tests/messaging proves for Twilio, for each
provider (issue 13), plus fail-over between them."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from flask import render_template
from flask_babel import force_locale
from sqlalchemy import text
from sqlmodel import Session, select

from diary.messaging import texts
from diary.messaging.gateway import FailoverGateway, build_gateway
from diary.messaging.outbox import enqueue
from diary.models import DoseLog, Flag, InboundMessage, Message, Participant, Site
from diary.scheduling import run_jobs
from diary.scheduling.context import Jobs
from diary.staff import vocab
from diary.staff.timeline import participant_timeline
from tests.messaging.cn_providers import CALLBACK_SECRET, Provider, write_templates_toml
from tests.messaging.test_course_schedule import expected
from tests.messaging.test_webhooks import sent_reminder

PROVIDERS = ["tencent", "aliyun"]


class CN:
    """Drives the scheduler at chosen instants with the app's gateway built from settings."""

    def __init__(self, app, clock, providers: list[Provider], tmp_path):
        self.app, self.clock, self.providers = app, clock, providers
        templates = write_templates_toml(tmp_path / "sms-templates.toml", [p.name for p in providers])
        settings = {"SMS_BACKEND": ",".join(p.name for p in providers), "SMS_TEMPLATES": str(templates),
                    "SMS_RATE_PER_SECOND": 0, "SMS_PROVIDER_TIMEOUT": 1, "SMS_CALLBACK_SECRET": CALLBACK_SECRET,
                    "DIGEST_TIME": "23:59"}  # no staff digest among the messages these tests count
        for p in providers:
            settings.update(p.settings())
        app.config.update(settings)
        self.gateway = build_gateway(app.config)
        for gw in getattr(self.gateway, "gateways", [self.gateway]):
            gw.clock = clock  # reconciliation's "too early to tell" is judged on the test's clock
        app.extensions["diary.gateway"] = self.gateway

    def tick(self, now: datetime | None = None) -> dict:
        if now is not None:
            self.clock.now = now
        with self.app.app_context():
            return run_jobs(self.app.extensions["diary.engine"], Jobs.from_app(self.app), self.clock.now)

    def outbox(self) -> list[Message]:
        with Session(self.app.extensions["diary.engine"]) as s:
            return list(s.exec(select(Message).order_by(Message.id)).all())

    def sent(self) -> list[dict]:
        return [m for p in self.providers for m in p.sent()]


@pytest.fixture(params=PROVIDERS)
def one(request, clock):
    """One domestic provider's double, running."""
    p = Provider(request.param, clock)
    with p.double:
        yield p


@pytest.fixture
def cn(app, clock, one, tmp_path):
    return CN(app, clock, [one], tmp_path)


@pytest.fixture
def site(session):
    site = Site(code="C", name="Fujian site", phone="+8613700000009")
    session.add(site)
    session.commit()
    return site


@pytest.fixture
def queue(app, session, site, clock):
    """Queue n template messages to distinct numbers (no participant: no quiet hours)."""

    def make(n: int, *, first: int = 0, now: datetime | None = None) -> None:
        with app.app_context():
            for i in range(first, first + n):
                enqueue(session, app.extensions["diary.cipher"], dedupe_key=f"cn:{i}", kind="notice",
                        site_id=site.id, to=f"+86139{i:08d}", body=texts.draw_morning("zh", phone="0591-8888"),
                        not_before=now or clock.now, created_at=now or clock.now)
        session.commit()

    return make


def notices(cn) -> list[Message]:
    return [m for m in cn.outbox() if m.kind == "notice"]


def assert_each_sent_once(cn, n: int) -> None:
    rows = notices(cn)
    assert [m.status for m in rows] == ["sent"] * n
    recipients = [m["to"] for m in cn.sent() if m["to"].startswith("+86139")]
    assert len(recipients) == len(set(recipients)) == n


# --- a course ---------------------------------------------------------------------------------------


def test_a_14_day_course_sends_each_reminder_once_as_its_template(app, cn, one, enrol, clock):
    tz = "Asia/Shanghai"
    day1 = date(2026, 12, 2)
    p, course, phone = enrol(day1=day1, tz=tz, language="zh")

    now, end = (datetime(2026, 12, 1, 0, 0, tzinfo=ZoneInfo(tz)).astimezone(UTC),
                datetime(2026, 12, 16, 23, 30, tzinfo=ZoneInfo(tz)).astimezone(UTC))
    while now <= end:
        cn.tick(now)
        now += timedelta(minutes=30)

    names = {"dose_reminder": "dose", "dose_followup": "followup", "draw_morning": "draw_morn",
             "draw_evening": "draw_eve"}
    got = [(names[m["key"]], m["at"].astimezone(ZoneInfo(tz)).strftime("%m-%d %H:%M")) for m in one.sent_to(phone)]
    assert got == expected(day1, dose="08:00", followup="10:00")
    rows = {m.provider_id: m for m in cn.outbox() if m.participant_id == p.id}
    for sent in one.sent_to(phone):
        row = rows[sent["id"]]
        assert (row.provider, row.template, row.language) == (one.name, sent["key"], "zh")
        assert sent["ref"] == f"diary-{row.id}"
    draw = next(m for m in one.sent_to(phone) if m["key"] == "draw_morning")
    assert "+86-591-0000-0000" in (draw["params"] if isinstance(draw["params"], list) else draw["params"].values())


# --- throttling, outages, refusals ---------------------------------------------------------------------


def test_throttling_is_retried_until_each_message_is_sent_once(cn, one, queue, clock):
    queue(3)
    one.throttle_next(4)
    cn.tick()
    assert {m.status for m in notices(cn)} == {"queued"}

    for _ in range(8):
        clock.advance(minutes=2)
        cn.tick()

    assert_each_sent_once(cn, 3)


def test_an_outage_inside_the_provider_is_retried(cn, one, queue, clock):
    queue(2)
    one.fail_inside_next(3)
    for _ in range(8):
        cn.tick()
        clock.advance(minutes=2)

    assert_each_sent_once(cn, 2)


def test_a_provider_that_cannot_be_reached_is_retried_when_it_is_back(cn, one, queue, clock):
    queue(2)
    one.double.down()
    cn.tick()
    assert {m.status for m in notices(cn)} == {"queued"}  # definitely not sent: no reconciliation needed

    one.double.up()
    for _ in range(8):
        clock.advance(minutes=2)
        cn.tick()

    assert_each_sent_once(cn, 2)


def test_a_blacklisted_number_fails_for_good_and_is_flagged(cn, one, queue, session, clock):
    queue(1)
    one.reject("+8613900000000")
    cn.tick()

    [row] = notices(cn)
    assert row.status == "failed" and "blacklisted" in row.last_error
    assert session.exec(select(Flag).where(Flag.key == f"sms_failed:{row.id}")).one()
    assert cn.sent() == []


def test_an_uncertain_send_is_reconciled_by_our_reference_and_not_sent_again(cn, one, queue, clock):
    queue(1)
    one.double.set_latency(1.6)  # longer than SMS_PROVIDER_TIMEOUT: accepted, but we never hear so
    cn.tick()
    [row] = notices(cn)
    assert row.status == "sending" and len(cn.sent()) == 1

    one.double.set_latency(0)
    for _ in range(4):
        clock.advance(minutes=2)
        cn.tick()

    [row] = notices(cn)
    assert row.status == "sent" and row.provider == one.name
    assert len(cn.sent()) == 1


def test_an_uncertain_send_the_provider_never_got_is_sent_once_after_reconciliation(cn, one, queue, clock):
    queue(1)
    one.double.stall_next(1, seconds=1.6)  # we time out; the provider never processed it
    cn.tick()
    assert [m.status for m in notices(cn)] == ["sending"] and cn.sent() == []

    clock.advance(minutes=3)
    cn.tick()
    if one.name == "tencent":
        # Tencent lists a message only once its receipt is in: "not found" cannot prove it yet.
        assert [m.status for m in notices(cn)] == ["sending"] and cn.sent() == []
        for _ in range(6):
            clock.advance(minutes=2)
            cn.tick()

    [row] = notices(cn)
    assert (row.status, row.provider) == ("sent", one.name)
    assert len(cn.sent()) == 1


# --- receipts and replies ---------------------------------------------------------------------------------


def test_a_duplicate_receipt_changes_nothing(cn, one, queue, client, session, clock):
    queue(1)
    cn.tick()
    [row] = notices(cn)
    payload = one.receipt(one.sent()[0]["id"])

    assert client.post(one.path("receipt"), json=payload).status_code == 200
    [first] = notices(cn)
    clock.advance(minutes=5)
    assert client.post(one.path("receipt"), json=payload).status_code == 200

    [again] = notices(cn)
    assert first.status == again.status == "delivered"
    assert again.delivered_at == first.delivered_at


def test_a_failure_receipt_is_flagged_once_however_often_it_comes(cn, one, queue, client, session):
    queue(1)
    cn.tick()
    payload = one.receipt(one.sent()[0]["id"], success=False)
    for _ in range(2):
        assert client.post(one.path("receipt"), json=payload).status_code == 200

    [row] = notices(cn)
    assert row.status == "undelivered"
    assert len(session.exec(select(Flag).where(Flag.kind == "sms_failed")).all()) == 1


def test_a_reply_logs_the_dose_once_however_often_the_callback_comes(cn, one, client, session, world, clock):
    sent_reminder(session, world, clock, 3)
    payload = one.reply(world.phones["pa"], "已服")
    for _ in range(3):
        response = client.post(one.path("reply"), json=payload)
        assert response.status_code == 200

    session.expire_all()
    [log] = session.exec(select(DoseLog).where(DoseLog.course_id == world.courses["pa"].id)).all()
    assert (log.course_day, log.outcome, log.source) == (3, "taken", "sms")
    assert len(session.exec(select(InboundMessage)).all()) == 1
    [answer] = session.exec(select(Message).where(Message.kind == "reply")).all()
    assert answer.template == "reply_logged"


@pytest.mark.parametrize("word", ["TD", "T", "N", "退订"])
def test_the_opt_out_words_mainland_carriers_expect_stop_the_reminders(cn, one, client, session, world, word):
    assert client.post(one.path("reply"), json=one.reply(world.phones["pa"], word)).status_code == 200

    session.expire_all()
    assert session.get(Participant, world.participants["pa"].id).sms_opt_in is False


def test_an_unauthenticated_callback_is_refused_and_changes_nothing(cn, one, app, client, session, world, clock):
    reminder = sent_reminder(session, world, clock, 3)
    reply = one.reply(world.phones["pa"], "1")

    assert client.post(one.path("reply", "wrong-" + CALLBACK_SECRET), json=reply).status_code == 403
    assert client.post(one.path("reply", CALLBACK_SECRET[:-1]), json=reply).status_code == 403
    app.config["SMS_CALLBACK_ALLOWED_IPS"] = "203.0.113.0/24"  # the test client comes from 127.0.0.1
    assert client.post(one.path("reply"), json=reply).status_code == 403
    app.config["SMS_CALLBACK_ALLOWED_IPS"] = None
    app.config["SMS_CALLBACK_SECRET"] = None
    assert client.post(one.path("reply", "None"), json=reply).status_code == 403
    assert client.post(one.path("receipt", ""), json=[]).status_code in (403, 404, 405)

    session.expire_all()
    assert session.exec(select(InboundMessage)).all() == [] and session.exec(select(DoseLog)).all() == []
    assert session.get(Message, reminder.id).status == "delivered"


def test_a_malformed_callback_is_a_clear_400_and_changes_nothing(cn, one, client, session, world):
    good = one.reply(world.phones["pa"], "1")
    batch = (good if isinstance(good, list) else [good]) + [{"unexpected": True}]

    assert client.post(one.path("reply"), json=batch).status_code == 400
    assert client.post(one.path("receipt"), data="not json").status_code == 400
    assert session.exec(select(InboundMessage)).all() == []


# --- fail-over -----------------------------------------------------------------------------------------------


@pytest.fixture
def pair(app, clock, tmp_path):
    tencent, aliyun = Provider("tencent", clock), Provider("aliyun", clock)
    with tencent.double, aliyun.double:
        cn = CN(app, clock, [tencent, aliyun], tmp_path)
        assert isinstance(cn.gateway, FailoverGateway)
        yield cn, tencent, aliyun


def test_fail_over_sends_through_the_second_provider_when_the_first_refuses(pair, queue):
    cn, tencent, aliyun = pair
    queue(2)
    tencent.throttle_next(1)
    tencent.reject("+8613900000001")
    cn.tick()

    assert [m.provider for m in notices(cn)] == ["aliyun", "aliyun"]
    assert tencent.sent() == [] and len(aliyun.sent()) == 2
    assert_each_sent_once(cn, 2)


def test_fail_over_when_the_first_provider_cannot_be_reached(pair, queue):
    cn, tencent, aliyun = pair
    queue(1)
    tencent.double.down()
    cn.tick()

    [row] = notices(cn)
    assert (row.status, row.provider) == ("sent", "aliyun")
    assert len(aliyun.sent()) == 1


def test_fail_over_never_sends_twice_after_an_uncertain_send(pair, queue, clock):
    cn, tencent, aliyun = pair
    queue(1)
    tencent.double.set_latency(1.6)  # Tencent accepts, but the answer never reaches us
    cn.tick()
    tencent.double.set_latency(0)
    for _ in range(4):
        clock.advance(minutes=2)
        cn.tick()

    [row] = notices(cn)
    assert (row.status, row.provider) == ("sent", "tencent")
    assert len(tencent.sent()) == 1 and aliyun.sent() == []


def test_the_staff_timeline_names_the_provider(pair, client, world, clock, session, app):
    cn, tencent, aliyun = pair
    with app.app_context():
        enqueue(session, app.extensions["diary.cipher"], dedupe_key="tl:1", kind="dose", site_id=world.sites["A"].id,
                participant_id=world.participants["pa"].id, to=world.phones["pa"],
                body=texts.dose_followup("en"), not_before=clock.now, created_at=clock.now)
    session.commit()
    tencent.double.down()
    cn.tick()

    with app.test_request_context(), force_locale("en"):
        events = participant_timeline(session, world.participants["pa"])
        html = render_template("staff/partials/timeline.html", events=events, vocab=vocab, staff_names={},
                               records_vocab=None, rcfg=None, html_lang="en")
    assert "sent by Alibaba Cloud SMS" in html


@pytest.mark.parametrize("kind", ["reply", "receipt"])
def test_hostile_callbacks_never_fail_with_a_server_error(cn, one, client, session, world, clock, kind):
    sent_reminder(session, world, clock, 3)
    hostile = [None, 7, "text", [], [[1]], {"text": {"a": 1}}, [{"sid": "\x00", "biz_id": "\x00" * 200}],
               [{"mobile": "\x00", "text": "1\x00", "phone_number": "1" * 300, "content": "\x00" * 5000,
                 "sequence_id": "9" * 500}],
               [{"sid": "x", "biz_id": "x", "out_id": "diary-99999999999999999999", "success": "maybe"}],
               [{"sid": "s"}] * 1001]
    for payload in hostile:
        response = client.post(one.path(kind), json=payload)
        assert response.status_code in (200, 400), (payload, response.status_code)
    assert client.post(one.path(kind), data=b"\xff\xfe", content_type="application/json").status_code == 400

    session.expire_all()
    assert session.exec(select(DoseLog)).all() == []
    assert session.exec(select(Flag).where(Flag.kind == "sms_failed")).all() == []


def _fail_inbound_with_body(session, body: str) -> None:
    """The database fails to store an incoming SMS with this text (not a duplicate: a real error)."""
    if session.get_bind().dialect.name == "sqlite":
        # An integer overflow at run time: an error that is not a constraint (a RAISE would be one).
        session.exec(text(f"CREATE TRIGGER fail_inbound BEFORE INSERT ON inboundmessage WHEN NEW.body = '{body}' "
                          "BEGIN SELECT abs(-9223372036854775807 - 1); END"))
    else:
        session.exec(text("CREATE FUNCTION fail_inbound() RETURNS trigger LANGUAGE plpgsql AS "
                          f"$$ BEGIN IF NEW.body = '{body}' THEN RAISE EXCEPTION 'storage failed'; END IF; "
                          "RETURN NEW; END $$"))
        session.exec(text("CREATE TRIGGER fail_inbound BEFORE INSERT ON inboundmessage "
                          "FOR EACH ROW EXECUTE FUNCTION fail_inbound()"))
    session.commit()


def test_a_reply_is_kept_when_a_later_one_of_its_batch_fails(cn, one, app, client, session, world, clock):
    sent_reminder(session, world, clock, 3)
    _fail_inbound_with_body(session, "broken")
    batch = [item for phone, body in ((world.phones["pa"], "1"), (world.phones["pb"], "broken"))
             for item in (lambda r: r if isinstance(r, list) else [r])(one.reply(phone, body))]
    app.config["PROPAGATE_EXCEPTIONS"] = False
    assert client.post(one.path("reply"), json=batch).status_code == 500  # the provider sends it again

    session.expire_all()
    # Each reply is its own transaction: the failure of the second does not undo the first.
    [log] = session.exec(select(DoseLog).where(DoseLog.course_id == world.courses["pa"].id)).all()
    assert (log.course_day, log.outcome, log.source) == (3, "taken", "sms")
    assert [m.body for m in session.exec(select(InboundMessage)).all()] == ["1"]
