"""Messaging fixtures: the Twilio double on 127.0.0.1 and the app's gateway pointed at it."""

from __future__ import annotations

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from sqlmodel import Session, select

from diary.messaging.gateway import TwilioGateway
from diary.models import Message
from diary.scheduling import run_jobs
from diary.scheduling.context import Jobs
from tests.fakes.twilio_double import TwilioDouble

SENDER = "+15005550006"


@pytest.fixture
def twilio(clock):
    with TwilioDouble(clock=clock) as double:
        yield double


@pytest.fixture
def gateway(app, twilio):
    gw = TwilioGateway(twilio.account_sid, twilio.auth_token, from_number=SENDER,
                       api_base_url=twilio.url, timeout=5.0)
    app.config.update(SMS_BACKEND="twilio", TWILIO_ACCOUNT_SID=twilio.account_sid,
                      TWILIO_AUTH_TOKEN=twilio.auth_token, TWILIO_FROM=SENDER,
                      TWILIO_API_BASE_URL=twilio.url, SMS_RATE_PER_SECOND=0)
    app.extensions["diary.gateway"] = gw
    return gw


class SMS:
    """Drives the scheduler at chosen instants and reads what reached the Twilio double."""

    def __init__(self, app, twilio, clock):
        self.app, self.twilio, self.clock = app, twilio, clock

    def tick(self, now: datetime | None = None, **overrides) -> dict:
        if now is not None:
            self.clock.now = now
        with self.app.app_context():
            jobs = Jobs.from_app(self.app, **overrides)
            return run_jobs(self.app.extensions["diary.engine"], jobs, self.clock.now)

    def sent_to(self, phone: str) -> list[dict]:
        return [m for m in self.twilio.messages if m["to"] == phone]

    def outbox(self) -> list[Message]:
        with Session(self.app.extensions["diary.engine"]) as s:
            return list(s.exec(select(Message).order_by(Message.id)).all())

    def local(self, when: datetime, tz: str) -> str:
        return when.astimezone(ZoneInfo(tz)).strftime("%Y-%m-%d %H:%M")


@pytest.fixture
def sms(app, twilio, gateway, clock):
    return SMS(app, twilio, clock)


@pytest.fixture
def enrol(app, session, world, clock):
    """Enrol a participant at site A (or `site`) with a course whose day 1 is `day1` (services, not SQL)."""
    from diary.services import enrolment

    cfg = app.extensions["diary.study"]
    cipher = app.extensions["diary.cipher"]
    counter = iter(range(100))

    def make(*, day1, tz="Asia/Shanghai", reminder_time="08:00", language="en", phone=None, site="A"):
        n = next(counter)
        phone = phone or f"+861380000{n:04d}"
        p = enrolment.enroll(session, cipher, site_id=world.sites[site].id, study_number=f"T-{n:03d}",
                             cohort="primary", phone=phone, staff_id=world.staff["nurse_a"].id,
                             now=clock.now, language=language, timezone=tz, reminder_time=reminder_time)
        course = enrolment.open_course(session, cfg, participant=p, adc_drug="trastuzumab_deruxtecan",
                                       infusion_date=day1 - timedelta(days=1), staff_id=world.staff["nurse_a"].id,
                                       now=clock.now)
        session.commit()
        return p, course, phone

    return make
