"""A signed Twilio webhook carrying a NUL byte is answered 200 and stored without it (issue 11, item 5).

PostgreSQL refuses NUL in text; a 500 made Twilio retry the same message for ever."""

from sqlmodel import select

from diary.models import DoseLog, InboundMessage
from tests.messaging.test_webhooks import sent_reminder

INBOUND = "http://localhost/sms/inbound"


def test_a_nul_byte_in_an_inbound_sms_is_stored_without_it_and_retries_succeed(client, twilio, world, gateway,
                                                                                  session, clock):
    sent_reminder(session, world, clock, 3)  # the reply answers today's reminder (issue 9's day rule)
    form, headers = twilio.inbound_request(INBOUND, world.phones["pa"], "1\x00")
    for _ in range(3):
        r = client.post("/sms/inbound", data=form, headers=headers)
        assert r.status_code == 200 and "<Response></Response>" in r.get_data(as_text=True)
    session.expire_all()
    [inbound] = session.exec(select(InboundMessage)).all()
    assert inbound.body == "1" and inbound.handled_as == "taken"
    assert len(session.exec(select(DoseLog)).all()) == 1


def test_a_nul_byte_in_a_delivery_status_callback_is_answered_200(client, twilio, world, gateway):
    url = "http://localhost/sms/status"
    form = {"MessageSid": "SM\x00bad", "MessageStatus": "delivered"}
    headers = {"X-Twilio-Signature": twilio.sign(url, form)}
    assert client.post("/sms/status", data=form, headers=headers).status_code == 200
