"""GET /health for monitoring, and the staff alarm when the scheduler stops ticking."""

def test_health_reports_the_heartbeat_and_the_outbox_backlog(client, sms, world, clock, twilio):
    twilio.fail_next(10, status=503)
    sms.tick()  # reminders queued, the provider down: a backlog
    clock.advance(minutes=2)

    body = client.get("/health").get_json()

    assert body["database"] == "ok" and body["status"] == "ok"
    assert body["scheduler"]["age_seconds"] == 120 and body["scheduler"]["stale"] is False
    assert body["outbox"]["backlog"] >= 2 and body["outbox"]["oldest_unsent_age_seconds"] == 120


def test_health_holds_no_personal_data(client, sms, world):
    sms.tick()
    text = client.get("/health").get_data(as_text=True)

    assert all(phone not in text for phone in world.phones.values())
    assert "PA" not in text and "Study diary" not in text


def test_health_answers_503_when_the_scheduler_is_stale(client, sms, clock):
    sms.tick()
    clock.advance(minutes=6)

    response = client.get("/health")

    assert response.status_code == 503 and response.get_json()["scheduler"]["stale"] is True


def test_health_answers_503_before_the_scheduler_ever_ran(client):
    response = client.get("/health")

    assert response.status_code == 503 and response.get_json()["scheduler"]["last_tick"] is None


def test_staff_pages_show_an_alarm_when_the_scheduler_has_not_ticked_for_five_minutes(client, auth, sms, clock):
    auth.staff("nurse_a")
    sms.tick()
    assert 'id="scheduler-alarm"' not in client.get("/staff/").get_data(as_text=True)

    clock.advance(minutes=6)

    assert 'id="scheduler-alarm"' in client.get("/staff/").get_data(as_text=True)


def test_participant_pages_never_show_the_scheduler_alarm(client):
    assert 'scheduler-alarm' not in client.get("/login").get_data(as_text=True)
