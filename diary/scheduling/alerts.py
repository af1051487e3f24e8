"""Staff alerts (danger symptoms, daily digest) and the dose-change notice to a participant."""

from __future__ import annotations

from datetime import datetime, time, timedelta

from flask import current_app
from sqlalchemy import func, literal
from sqlmodel import Session, select

from diary import reminders, study
from diary.crypto import DataCipher, InvalidPhone, normalize_phone
from diary.messaging import texts
from diary.messaging.outbox import enqueue
from diary.models import Course, DoseDecision, Flag, Message, Participant, Site
from diary.scheduling.context import Jobs

ALERT_PREFIX = "alert:"
# The flags that wake the on-call phone: a danger symptom, and a PLT at or below the critical
# threshold (rules.urgent_at_or_below), whether the count was entered or corrected.
ALERT_KINDS = ("danger_symptom", "urgent_plt")
FLAG_KINDS = ("danger_symptom", "missed_dose", "overdue_lab", "sms_failed", "opt_out")


def staff_number(site: Site, *, on_call: bool) -> str:
    """The site's number in E.164 (sites type them with dashes). Danger alerts go to the
    on-call phone; a site without one gets them on its main number."""
    raw = (site.on_call_phone or site.phone) if on_call else site.phone
    try:
        return normalize_phone(raw)
    except InvalidPhone:
        return raw  # sent as typed; the provider's refusal raises an sms_failed flag


def send_danger_alerts(session: Session, jobs: Jobs, now: datetime) -> int:
    """Queue an on-call SMS for every open danger-symptom or critical-PLT flag that has none yet.

    Derived from the flags rather than sent by the symptom form, so an alert whose web request
    died after the commit, or raised while the scheduler was down, is still sent. Quiet hours
    do not apply: this is the one message that must wake someone."""
    rows = session.exec(
        select(Flag, Participant.study_number, Site)
        .join(Site, Site.id == Flag.site_id)
        .join(Participant, Participant.id == Flag.participant_id)
        .outerjoin(Message, Message.dedupe_key == literal(ALERT_PREFIX) + Flag.key)
        .where(Flag.kind.in_(ALERT_KINDS), Flag.acknowledged_at.is_(None), Message.id.is_(None))
        .order_by(Flag.id)
    ).all()
    queued = 0
    for flag, study_number, site in rows:
        alert = texts.critical_plt_alert if flag.kind == "urgent_plt" else texts.danger_alert
        body = alert(jobs.staff_language, study_number=study_number, site_code=site.code)
        if enqueue(session, jobs.cipher, dedupe_key=ALERT_PREFIX + flag.key, kind="danger_alert",
                   site_id=site.id, to=staff_number(site, on_call=True), body=body, not_before=now,
                   participant_id=flag.participant_id, created_at=now):
            queued += 1
    return queued


def send_sae_alerts(session: Session, jobs: Jobs, now: datetime, report_hours: int) -> int:
    """Queue an on-call SMS for every SAE flag that has none yet (derived, like danger alerts, so
    an SAE recorded while the scheduler was down is still announced on the next tick)."""
    rows = session.exec(
        select(Flag, Participant.study_number, Site)
        .join(Site, Site.id == Flag.site_id)
        .join(Participant, Participant.id == Flag.participant_id)
        .outerjoin(Message, Message.dedupe_key == literal(ALERT_PREFIX) + Flag.key)
        .where(Flag.kind == "sae", Flag.acknowledged_at.is_(None), Message.id.is_(None))
        .order_by(Flag.id)
    ).all()
    queued = 0
    for flag, study_number, site in rows:
        body = texts.sae_alert(jobs.staff_language, study_number=study_number, site_code=site.code,
                               hours=report_hours)
        if enqueue(session, jobs.cipher, dedupe_key=ALERT_PREFIX + flag.key, kind="sae_alert",
                   site_id=site.id, to=staff_number(site, on_call=True), body=body, not_before=now,
                   participant_id=flag.participant_id, created_at=now):
            queued += 1
    return queued


def send_digests(session: Session, jobs: Jobs, now: datetime) -> int:
    """Once a day per site, from DIGEST_TIME local: open flag counts to the site number."""
    sites = session.exec(select(Site)).all()
    owed = {}
    for site in sites:
        due = reminders.digest_due(site.timezone, jobs.digest_time, now)
        if due is not None:
            owed[f"digest:{site.id}:{due[0].isoformat()}"] = (site, due)
    if not owed:
        return 0
    known = set(session.exec(select(Message.dedupe_key).where(Message.dedupe_key.in_(list(owed)))).all())
    owed = {key: value for key, value in owed.items() if key not in known}
    if not owed:
        return 0
    open_flags: dict[tuple[int, str], int] = {
        (site_id, kind): n for site_id, kind, n in session.exec(
            select(Flag.site_id, Flag.kind, func.count()).where(Flag.acknowledged_at.is_(None))
            .group_by(Flag.site_id, Flag.kind)
        ).all()
    }
    queued = 0
    for key, (site, (day, expires_at)) in owed.items():
        count = {kind: open_flags.get((site.id, kind), 0) for kind in FLAG_KINDS}
        total = sum(n for (site_id, _kind), n in open_flags.items() if site_id == site.id)
        body = texts.staff_digest(jobs.staff_language, day=day, open_flags=total,
                                  danger=count["danger_symptom"], missed=count["missed_dose"],
                                  labs=count["overdue_lab"], sms=count["sms_failed"],
                                  opt_outs=count["opt_out"])
        if enqueue(session, jobs.cipher, dedupe_key=key, kind="digest", site_id=site.id,
                   to=staff_number(site, on_call=False), body=body, not_before=now,
                   expires_at=expires_at, created_at=now):
            queued += 1
    return queued


def queue_dose_change_notice(session: Session, cipher: DataCipher, participant: Participant,
                             course: Course, decision: DoseDecision, now: datetime) -> Message | None:
    """Tell the participant about a signed dose decision, in the transaction that signs it.

    Quiet hours hold it; it expires when the course ends. None when the participant gets no
    SMS (opted out, withdrawn, completed) or the notice was queued before."""
    if participant.status != "active" or not participant.sms_opt_in:
        return None
    config = current_app.config
    cfg = current_app.extensions["diary.study"]
    site = session.get(Site, participant.site_id)
    last_day = course.start_date + timedelta(days=cfg.course_length_days)
    expires_at = study.local_instant(last_day, time(0, 0), participant.timezone)
    quiet = study.quiet_window(cfg, site.quiet_start, site.quiet_end)
    not_before = study.quiet_hours_end(now, participant.timezone, quiet)
    if not_before >= expires_at:
        return None
    body = texts.dose_change(participant.language, day=decision.effective_day, mg=decision.dose_mg,
                             tablets=round(decision.dose_mg / cfg.tablet_strength_mg),
                             show_dose=config["SMS_SHOW_DOSE"], phone=site.phone,
                             link=config.get("SMS_LINK_BASE_URL"))
    return enqueue(session, cipher, dedupe_key=f"dose_change:{decision.id}", kind="dose_change",
                   site_id=participant.site_id, participant_id=participant.id, to=None,
                   to_enc=participant.phone_enc, body=body, not_before=not_before,
                   expires_at=expires_at, course_id=course.id, course_day=decision.effective_day,
                   created_at=now)

