"""A participant's own settings: reminder time, language, and SMS on or off."""

from __future__ import annotations

from datetime import datetime

from sqlmodel import Session

from diary import audit, study
from diary.models import LANGUAGES, Participant, Site
from diary.services import FieldError
from diary.services.flag_details import detail
from diary.services.flags import raise_flag
from diary.study import StudyConfig


class SettingsError(FieldError):
    """A setting refused; a reminder time in quiet hours carries them as `details["quiet"]`."""


def update_settings(
    session: Session,
    *,
    participant: Participant,
    cfg: StudyConfig,
    reminder_time: str,
    language: str,
    sms_opt_in: bool,
    now: datetime,
) -> dict[str, tuple]:
    """Change what differs and audit it; returns {field: (before, after)}. Nothing changes on error.

    Turning SMS off is the participant's right and is respected at once (the scheduler reads
    `sms_opt_in`); it also raises a flag so that the site knows reminders have stopped.
    """
    reminder_time = (reminder_time or "").strip()
    site = session.get(Site, participant.site_id)
    quiet = study.quiet_window(cfg, site.quiet_start, site.quiet_end)  # their site's, not only the study's
    refusal = study.reminder_time_refusal(reminder_time, quiet)
    if refusal:
        raise SettingsError("reminder_time", refusal, quiet=quiet)
    if language not in LANGUAGES:
        raise SettingsError("language", "invalid")
    wanted = {"reminder_time": reminder_time, "language": language, "sms_opt_in": bool(sms_opt_in)}
    changes = {name: (getattr(participant, name), value) for name, value in wanted.items()
               if getattr(participant, name) != value}
    if not changes:
        return changes
    for name, (_before, after) in changes.items():
        setattr(participant, name, after)
    session.add(participant)
    session.flush()
    audit.record(
        session, actor=f"participant:{participant.id}", action="participant_settings_changed",
        entity="Participant", entity_id=participant.id, site_id=participant.site_id,
        participant_id=participant.id, at=now,
        before={name: before for name, (before, _after) in changes.items()},
        after={name: after for name, (_before, after) in changes.items()},
    )
    if "sms_opt_in" in changes:
        audit.record(
            session, actor=f"participant:{participant.id}",
            action="sms_opted_in" if sms_opt_in else "sms_opted_out", entity="Participant",
            entity_id=participant.id, site_id=participant.site_id, participant_id=participant.id,
            at=now, reason="participant settings page",
        )
        if not sms_opt_in:
            raise_flag(
                session, key=f"opt_out:{participant.id}:{int(now.timestamp())}", kind="opt_out",
                site_id=participant.site_id, participant_id=participant.id, now=now,
                detail=detail("opt_out_settings"),
            )
    return changes
