"""What the jobs need besides (session, now): study rules, cipher, gateway and settings."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, time, timedelta

from diary.crypto import DataCipher
from diary.messaging.gateway import Gateway
from diary.study import StudyConfig


@dataclass(frozen=True)
class Jobs:
    cfg: StudyConfig
    cipher: DataCipher
    gateway: Gateway
    show_dose: bool = False
    staff_language: str = "zh"
    digest_time: time = time(8, 30)
    lab_overdue_hours: float = 12.0
    rate_per_second: float = 0.0
    retry_window: timedelta = timedelta(hours=2)
    sending_timeout: timedelta = timedelta(minutes=2)
    batch_size: int = 500
    status_callback: str | None = None
    sae_report_hours: int = 24  # records.toml: the SAE alert tells the on-call phone the deadline
    # The instant a message is claimed or sent. A scheduler tick passes the tick's `now`;
    # the long-running process passes the wall clock, because a rate-limited batch can
    # outlast a minute and another dispatcher judges "sending too long" by these stamps.
    clock: Callable[[], datetime] | None = None

    @classmethod
    def from_app(cls, app, **overrides) -> Jobs:
        from diary.messaging.outbox import gateway

        config = app.config
        base = config.get("PUBLIC_BASE_URL")
        values = dict(
            cfg=app.extensions["diary.study"],
            cipher=app.extensions["diary.cipher"],
            gateway=gateway(),
            show_dose=config["SMS_SHOW_DOSE"],
            staff_language=config["STAFF_SMS_LANGUAGE"],
            digest_time=time.fromisoformat(config["DIGEST_TIME"]),
            lab_overdue_hours=config["LAB_OVERDUE_HOURS"],
            rate_per_second=config["SMS_RATE_PER_SECOND"],
            retry_window=timedelta(hours=config["SMS_RETRY_HOURS"]),
            sending_timeout=timedelta(seconds=config["SMS_SENDING_TIMEOUT_SECONDS"]),
            batch_size=config["SMS_BATCH_SIZE"],
            # Without a public URL Twilio cannot reach us; delivery then stays "sent".
            status_callback=f"{base}/sms/status" if base else None,
            sae_report_hours=app.extensions["diary.records"].adverse_events.sae_report_hours,
        )
        values.update(overrides)
        return cls(**values)
