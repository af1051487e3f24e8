"""The SMS gateway: the real twilio client talking HTTP to the Twilio double, no mocks."""

import logging
import socket
import threading
import traceback
from datetime import UTC, datetime, timedelta

import pytest
from twilio.request_validator import RequestValidator
from twilio.rest import Client
from werkzeug.serving import make_server
from werkzeug.wrappers import Request, Response

from diary.messaging.gateway import (
    ConsoleGateway,
    Gateway,
    GatewayError,
    TwilioGateway,
    build_gateway,
    segment_info,
    sms_text,
    twilio_error,
)
from tests.fakes.twilio_double import TwilioDouble

PARTICIPANT = "+8613800000001"
SENDER = "+15005550006"
SERVICE = "MG" + "0" * 32
T0 = datetime(2026, 12, 1, 1, 0, tzinfo=UTC)


class Clock:
    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
def clock():
    return Clock(T0)


@pytest.fixture
def twilio(clock):
    with TwilioDouble(clock=clock) as double:
        yield double


@pytest.fixture
def gateway(twilio):
    return TwilioGateway(
        twilio.account_sid,
        twilio.auth_token,
        from_number=SENDER,
        api_base_url=twilio.url,
        timeout=2.0,
    )


def unused_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


# --- sending ---------------------------------------------------------------------------


def test_a_send_returns_twilios_message_sid_and_twilio_has_the_message(twilio, gateway):
    sid = gateway.send(PARTICIPANT, "Take 5 mg (2 tablets) today.")

    [message] = twilio.messages
    assert sid == message["sid"]
    assert sid.startswith("SM") and len(sid) == 34
    assert (message["to"], message["from"], message["body"]) == (
        PARTICIPANT,
        SENDER,
        "Take 5 mg (2 tablets) today.",
    )


def test_it_sends_through_the_messaging_service_when_one_is_configured(twilio):
    gateway = TwilioGateway(
        twilio.account_sid,
        twilio.auth_token,
        messaging_service_sid=SERVICE,
        api_base_url=twilio.url,
    )

    gateway.send(PARTICIPANT, "Blood test tomorrow.")

    [message] = twilio.messages
    assert message["messaging_service_sid"] == SERVICE
    assert message["from"] is None


def test_it_asks_twilio_to_report_delivery_to_the_status_callback(twilio, gateway):
    gateway.send(PARTICIPANT, "Reminder", status_callback="https://diary.example/sms/status/7")

    assert twilio.messages[0]["status_callback"] == "https://diary.example/sms/status/7"


def test_the_base_url_may_end_with_a_slash(twilio):
    gateway = TwilioGateway(twilio.account_sid, twilio.auth_token, from_number=SENDER, api_base_url=twilio.url + "/")

    assert gateway.send(PARTICIPANT, "Hello") == twilio.messages[0]["sid"]


def test_twilio_edge_and_region_in_the_environment_do_not_redirect_the_base_url(twilio, monkeypatch):
    monkeypatch.setenv("TWILIO_EDGE", "singapore")
    monkeypatch.setenv("TWILIO_REGION", "sg1")
    gateway = TwilioGateway(twilio.account_sid, twilio.auth_token, from_number=SENDER, api_base_url=twilio.url)

    assert gateway.send(PARTICIPANT, "Hello") == twilio.messages[0]["sid"]


# --- failures ----------------------------------------------------------------------------


@pytest.mark.parametrize("status", [429, 500, 503])
def test_rate_limits_and_server_errors_are_worth_a_retry(twilio, gateway, status):
    twilio.fail_next(1, status=status)

    with pytest.raises(GatewayError) as raised:
        gateway.send(PARTICIPANT, "Reminder")

    assert raised.value.permanent is False
    assert raised.value.status == status
    assert twilio.messages == []
    assert gateway.send(PARTICIPANT, "Reminder")  # the next attempt goes through


@pytest.mark.parametrize("code", [21211, 21408, 21610, 21612, 21614])
def test_a_number_twilio_cannot_or_must_not_text_fails_for_good(twilio, gateway, code):
    twilio.fail_next(1, status=400, code=code)

    with pytest.raises(GatewayError) as raised:
        gateway.send(PARTICIPANT, "Reminder")

    assert (raised.value.permanent, raised.value.code, raised.value.status) == (True, code, 400)


def test_a_participant_who_replied_stop_fails_for_good(twilio, gateway):
    twilio.reject(PARTICIPANT, code=21610)

    with pytest.raises(GatewayError) as raised:
        gateway.send(PARTICIPANT, "Reminder")

    assert raised.value.permanent is True
    assert raised.value.code == 21610


@pytest.mark.parametrize(("status", "permanent"), [(400, True), (404, True), (429, False), (502, False)])
def test_an_unknown_code_is_judged_by_its_http_status(twilio, gateway, status, permanent):
    twilio.fail_next(1, status=status, code=99999)

    with pytest.raises(GatewayError) as raised:
        gateway.send(PARTICIPANT, "Reminder")

    assert raised.value.permanent is permanent


def test_wrong_credentials_fail_for_good(twilio):
    gateway = TwilioGateway(twilio.account_sid, "not-the-token", from_number=SENDER, api_base_url=twilio.url)

    with pytest.raises(GatewayError) as raised:
        gateway.send(PARTICIPANT, "Reminder")

    assert (raised.value.permanent, raised.value.status, raised.value.code) == (True, 401, 20003)


def test_a_provider_that_is_down_is_worth_a_retry(twilio, gateway):
    twilio.stop()

    with pytest.raises(GatewayError) as raised:
        gateway.send(PARTICIPANT, "Reminder")

    assert raised.value.permanent is False
    assert raised.value.status is None


def test_nothing_listening_on_the_port_is_worth_a_retry(twilio):
    gateway = TwilioGateway(
        twilio.account_sid,
        twilio.auth_token,
        from_number=SENDER,
        api_base_url=f"http://127.0.0.1:{unused_port()}",
    )

    with pytest.raises(GatewayError) as raised:
        gateway.send(PARTICIPANT, "Reminder")

    assert raised.value.permanent is False


def test_a_timeout_is_worth_a_retry_and_the_accepted_message_is_found_afterwards(twilio):
    gateway = TwilioGateway(
        twilio.account_sid,
        twilio.auth_token,
        from_number=SENDER,
        api_base_url=twilio.url,
        timeout=0.2,
    )
    twilio.set_latency(2.0)

    with pytest.raises(GatewayError) as raised:
        gateway.send(PARTICIPANT, "Reminder")
    twilio.set_latency(0)

    assert raised.value.permanent is False
    assert gateway.find_sent(PARTICIPANT, T0, "Reminder") == twilio.messages[0]["sid"]


def test_an_unreadable_answer_is_worth_a_retry():
    with TwilioDouble() as garbled:
        garbled._create = lambda form: Response("<html>proxy error</html>", status=201)
        gateway = TwilioGateway(garbled.account_sid, garbled.auth_token, from_number=SENDER, api_base_url=garbled.url)

        with pytest.raises(GatewayError) as raised:
            gateway.send(PARTICIPANT, "Reminder")

    assert raised.value.permanent is False


def test_an_error_does_not_reveal_the_phone_number(twilio, gateway):
    malformed = "+8613800000001999"  # too long for E.164: Twilio answers 21211 and quotes it

    with pytest.raises(GatewayError) as raised:
        gateway.send(malformed, "Reminder")

    assert raised.value.code == 21211 and raised.value.permanent is True
    assert malformed not in str(raised.value)
    assert "***1999" in str(raised.value)
    assert malformed not in "".join(traceback.format_exception(raised.value))


def test_request_logs_do_not_reveal_the_phone_number(twilio, gateway, caplog):
    # diary.logs keeps these loggers at WARNING; an operator debugging at DEBUG still gets no number.
    caplog.set_level(logging.DEBUG)
    for name in ("twilio", "urllib3"):
        caplog.set_level(logging.DEBUG, logger=name)

    gateway.send(PARTICIPANT, "Reminder")
    gateway.find_sent(PARTICIPANT, T0, "Reminder")

    assert "Messages.json" in caplog.text  # twilio and urllib3 did log the requests
    assert "8613800000001" not in caplog.text


@pytest.mark.parametrize(("code", "permanent"), [(30003, False), (30008, False), (30005, True), (30006, True)])
def test_delivery_failure_codes_are_classified_in_the_adapter(code, permanent):
    assert twilio_error("undelivered", code=code).permanent is permanent


# --- reconciliation after a crash --------------------------------------------------------


def test_find_sent_finds_a_message_accepted_since_with_the_same_body(twilio, gateway):
    sid = gateway.send(PARTICIPANT, "Take 5 mg today.")

    assert gateway.find_sent(PARTICIPANT, T0 - timedelta(minutes=1), "Take 5 mg today.") == sid


def test_find_sent_ignores_a_message_with_a_different_body(twilio, gateway):
    gateway.send(PARTICIPANT, "Take 5 mg today.")

    assert gateway.find_sent(PARTICIPANT, T0 - timedelta(minutes=1), "Blood test tomorrow.") is None


def test_find_sent_ignores_a_message_to_someone_else(twilio, gateway):
    gateway.send("+8613800000002", "Take 5 mg today.")

    assert gateway.find_sent(PARTICIPANT, T0 - timedelta(minutes=1), "Take 5 mg today.") is None


def test_find_sent_ignores_a_message_accepted_before_since(twilio, gateway):
    gateway.send(PARTICIPANT, "Take 5 mg today.")

    assert gateway.find_sent(PARTICIPANT, T0 + timedelta(minutes=1), "Take 5 mg today.") is None


def test_find_sent_compares_at_twilios_whole_seconds(twilio, gateway, clock):
    clock.now = T0 + timedelta(milliseconds=700)  # Twilio will say 01:00:00
    sid = gateway.send(PARTICIPANT, "Take 5 mg today.")

    assert gateway.find_sent(PARTICIPANT, T0 + timedelta(milliseconds=500), "Take 5 mg today.") == sid


def test_find_sent_finds_a_message_twilio_still_holds_in_its_queue(clock):
    with TwilioDouble(clock=clock, auto_send=False) as twilio:
        gateway = TwilioGateway(twilio.account_sid, twilio.auth_token, from_number=SENDER, api_base_url=twilio.url)
        sid = gateway.send(PARTICIPANT, "Take 5 mg today.")

        assert twilio.messages[0]["date_sent"] is None
        assert gateway.find_sent(PARTICIPANT, T0, "Take 5 mg today.") == sid


def test_find_sent_reads_past_the_first_page(twilio, gateway, clock):
    sid = gateway.send(PARTICIPANT, "Take 5 mg today.")
    for minute in range(1, 6):
        clock.now = T0 + timedelta(minutes=minute)
        gateway.send(PARTICIPANT, f"Follow-up {minute}")
    gateway.page_size = 2

    assert gateway.find_sent(PARTICIPANT, T0, "Take 5 mg today.") == sid


def test_find_sent_stops_reading_at_messages_sent_before_since(twilio, gateway, clock):
    for hours, body in [(-48, "Old reminder"), (-24, "Old reminder"), (1, "New reminder")]:
        clock.now = T0 + timedelta(hours=hours)
        gateway.send(PARTICIPANT, body)
    gateway.page_size = 1

    assert gateway.find_sent(PARTICIPANT, T0, "Old reminder") is None
    # the newest page, then the first message sent before `since`, and no further
    assert [method for method, _ in twilio.requests].count("GET") == 2


def test_find_sent_failing_is_worth_a_retry(twilio, gateway):
    twilio.fail_next(1, status=500, method="GET")

    with pytest.raises(GatewayError) as raised:
        gateway.find_sent(PARTICIPANT, T0, "Take 5 mg today.")

    assert (raised.value.permanent, raised.value.status) == (False, 500)


def test_find_sent_wants_an_aware_instant(gateway):
    with pytest.raises(ValueError, match="timezone-aware"):
        gateway.find_sent(PARTICIPANT, datetime(2026, 12, 1, 9, 0), "Take 5 mg today.")  # noqa: DTZ001


# --- the double speaks Twilio's protocol -------------------------------------------------


@pytest.fixture
def client(twilio):
    client = Client(twilio.account_sid, twilio.auth_token)
    client.api.base_url = twilio.url
    return client


def test_the_double_lists_newest_first_across_pages(twilio, gateway, client, clock):
    for minute in range(5):
        clock.now = T0 + timedelta(minutes=minute)
        gateway.send(PARTICIPANT, f"Message {minute}")

    bodies = [m.body for m in client.messages.list(to=PARTICIPANT, page_size=2)]

    assert bodies == [f"Message {minute}" for minute in (4, 3, 2, 1, 0)]


def test_the_double_filters_on_whole_days_sent(twilio, gateway, client, clock):
    gateway.send(PARTICIPANT, "Day one")
    clock.now = T0 + timedelta(days=1)
    gateway.send(PARTICIPANT, "Day two")

    after = client.messages.list(date_sent_after=T0 + timedelta(days=1, hours=5))
    before = client.messages.list(date_sent_before=T0 + timedelta(hours=5))

    assert [m.body for m in after] == ["Day two"]
    assert [m.body for m in before] == ["Day one"]


def test_the_double_fetches_one_message(twilio, gateway, client):
    sid = gateway.send(PARTICIPANT, "Hello")

    message = client.messages(sid).fetch()

    assert (message.sid, message.to, message.body, message.status) == (
        sid,
        PARTICIPANT,
        "Hello",
        "sent",
    )


@pytest.fixture
def webhook():
    received = []

    def app(environ, start_response):
        request = Request(environ)
        received.append((request.url, request.form.to_dict(), request.headers))
        return Response(status=204)(environ, start_response)

    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.port}/sms/status", received
    server.shutdown()
    server.server_close()


def test_the_double_posts_delivery_status_signed_like_twilio(twilio, gateway, webhook):
    url, received = webhook
    sid = gateway.send(PARTICIPANT, "Hello", status_callback=url)

    assert twilio.deliver(sid, "undelivered", error_code=30003) == 204

    [(seen_url, form, headers)] = received
    assert form["MessageSid"] == sid and form["MessageStatus"] == "undelivered"
    assert form["ErrorCode"] == "30003"
    validator = RequestValidator(twilio.auth_token)
    assert validator.validate(seen_url, form, headers["X-Twilio-Signature"])
    assert not RequestValidator("another-token").validate(seen_url, form, headers["X-Twilio-Signature"])
    assert twilio.messages[0]["status"] == "undelivered"


# --- development gateway and settings ----------------------------------------------------


def test_the_console_gateway_prints_the_message_with_the_number_masked(capsys):
    gateway = ConsoleGateway()

    message_id = gateway.send(PARTICIPANT, "Take 5 mg today.")

    out = capsys.readouterr().out
    assert "Take 5 mg today." in out and "***0001" in out
    assert "8613800000001" not in out
    assert message_id.startswith("console-")
    assert gateway.sent == [(PARTICIPANT, "Take 5 mg today.", message_id)]


def test_the_console_gateway_finds_what_it_sent():
    clock = Clock(T0)
    gateway = ConsoleGateway(clock=clock)
    message_id = gateway.send(PARTICIPANT, "Take 5 mg today.")

    assert gateway.find_sent(PARTICIPANT, T0, "Take 5 mg today.") == message_id
    assert gateway.find_sent(PARTICIPANT, T0, "Something else") is None
    assert gateway.find_sent(PARTICIPANT, T0 + timedelta(seconds=1), "Take 5 mg today.") is None


def test_both_gateways_have_the_gateway_shape(gateway):
    assert isinstance(gateway, Gateway)
    assert isinstance(ConsoleGateway(), Gateway)


def test_settings_choose_the_console_by_default():
    assert isinstance(build_gateway({}), ConsoleGateway)
    assert isinstance(build_gateway({"SMS_BACKEND": "console"}), ConsoleGateway)


def test_settings_build_a_twilio_gateway_that_sends_to_the_configured_base_url(twilio):
    gateway = build_gateway(
        {
            "SMS_BACKEND": "twilio",
            "TWILIO_ACCOUNT_SID": twilio.account_sid,
            "TWILIO_AUTH_TOKEN": twilio.auth_token,
            "TWILIO_FROM": SENDER,
            "TWILIO_MESSAGING_SERVICE_SID": None,
            "TWILIO_API_BASE_URL": twilio.url,
        }
    )

    assert gateway.send(PARTICIPANT, "Hello") == twilio.messages[0]["sid"]


@pytest.mark.parametrize(
    ("settings", "complaint"),
    [
        ({"TWILIO_AUTH_TOKEN": "t", "TWILIO_FROM": SENDER}, "TWILIO_ACCOUNT_SID"),
        ({"TWILIO_ACCOUNT_SID": "AC1", "TWILIO_FROM": SENDER}, "TWILIO_AUTH_TOKEN"),
        ({"TWILIO_ACCOUNT_SID": "AC1", "TWILIO_AUTH_TOKEN": "t"}, "TWILIO_FROM"),
        ({"TWILIO_ACCOUNT_SID": "AC1", "TWILIO_AUTH_TOKEN": "t", "TWILIO_FROM": "  "}, "sender"),
        (
            {
                "TWILIO_ACCOUNT_SID": "AC1",
                "TWILIO_AUTH_TOKEN": "t",
                "TWILIO_FROM": SENDER,
                "TWILIO_API_BASE_URL": "localhost:8025",
            },
            "TWILIO_API_BASE_URL",
        ),
    ],
)
def test_settings_refuse_an_incomplete_twilio_setup(settings, complaint):
    with pytest.raises(ValueError, match=complaint):
        build_gateway({"SMS_BACKEND": "twilio", **settings})


def test_settings_refuse_an_unknown_backend():
    with pytest.raises(ValueError, match="SMS_BACKEND"):
        build_gateway({"SMS_BACKEND": "carrier-pigeon"})


# --- message text ------------------------------------------------------------------------


def test_sms_text_replaces_non_breaking_spaces_and_strips():
    assert sms_text("  Take\u00a05\u202fmg\u3000today.\n") == "Take 5 mg today."


def test_sms_text_keeps_line_breaks_and_chinese_text():
    assert sms_text("今天服药 5 mg\n2 片") == "今天服药 5 mg\n2 片"


def test_one_non_breaking_space_would_halve_the_segment_and_sms_text_prevents_it():
    body = "Take 5\u00a0mg " + "x" * 90

    assert segment_info(body) == ("UCS-2", 2)
    assert segment_info(sms_text(body)) == ("GSM-7", 1)


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ("a" * 160, ("GSM-7", 1)),
        ("a" * 161, ("GSM-7", 2)),
        ("a" * 306, ("GSM-7", 2)),
        ("a" * 307, ("GSM-7", 3)),
        ("中" * 70, ("UCS-2", 1)),
        ("中" * 71, ("UCS-2", 2)),
        ("中" * 134, ("UCS-2", 2)),
        ("中" * 135, ("UCS-2", 3)),
        ("€" * 80, ("GSM-7", 1)),  # extension characters take two septets
        ("€" * 81, ("GSM-7", 2)),
        ("a" * 159 + "€", ("GSM-7", 2)),
        ("a" * 152 + "€" + "a" * 152, ("GSM-7", 3)),  # an escape pair is never split
        ("Dose: 5 mg @ 08:00 {ok} [x] ~ | ^ \\ é ñ Ä ß Δ £ ¥ §", ("GSM-7", 1)),
        ("a" * 159 + "\u00a0", ("UCS-2", 3)),
        ("💊" * 35, ("UCS-2", 1)),  # an emoji is two UTF-16 code units
        ("💊" * 36, ("UCS-2", 2)),
        ("", ("GSM-7", 1)),
    ],
)
def test_segment_info_counts_segments_like_the_carriers(body, expected):
    assert segment_info(body) == expected
