"""The participant's settings page; the rules and the audit trail are in the service."""

from __future__ import annotations

from flask import abort, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_babel import refresh
from flask_login import current_user

from diary import audit, clock, db
from diary.auth import devices, participant_required
from diary.errors import keep_typed
from diary.models import Participant
from diary.patient import bp
from diary.patient.common import cfg, me
from diary.patient.messages import settings_error
from diary.services.participant_settings import SettingsError, update_settings


def _devices() -> dict:
    s = db.session()
    return {"devices": devices.open_sessions(s, me().id), "this_device": devices.current_id(s, current_user.device)}


@bp.get("/settings")
@participant_required
def settings():
    p = me()
    return render_template("patient/settings.html", values={
        "reminder_time": p.reminder_time, "language": p.language, "sms": "on" if p.sms_opt_in else "off"},
        **_devices())


@bp.post("/settings/devices/<int:device_id>/end")
@participant_required
def end_device(device_id: int):
    """Sign out one of the participant's other phones; it must sign in again with the PIN."""
    s = db.session()
    if device_id == devices.current_id(s, current_user.device) or not devices.end_other(
            s, me().id, device_id, clock.now()):
        abort(404)
    audit.record(s, actor=current_user.actor, action="device_signed_out", entity="DeviceSession",
                 entity_id=device_id, site_id=me().site_id, participant_id=me().id, at=clock.now())
    flash(_("That phone is signed out."), "success")
    return redirect(url_for("patient.settings"), 303)


@keep_typed("patient.save_settings")
def _settings_expired(message: str):
    """A CSRF refusal (the page was open too long): the settings again, as chosen."""
    if getattr(current_user, "kind", None) != "participant":
        raise LookupError("nobody signed in: the plain error page")
    values = {name: request.form.get(name, "") for name in ("reminder_time", "language", "sms")}
    return render_template("patient/settings.html", values=values, error=message, **_devices()), 400


@bp.post("/settings")
@participant_required
def save_settings():
    form = request.form
    values = {name: form.get(name, "") for name in ("reminder_time", "language", "sms")}
    try:
        if values["sms"] not in ("on", "off"):
            raise SettingsError("sms", "invalid")
        # The row itself: me() is the read-only view of it this request began with.
        participant = db.session().get(Participant, me().id)
        update_settings(db.session(), participant=participant, cfg=cfg(), reminder_time=values["reminder_time"],
                        language=values["language"], sms_opt_in=values["sms"] == "on", now=clock.now())
    except SettingsError as error:
        return render_template("patient/settings.html", values=values, field=error.field,
                               error=settings_error(error), **_devices()), 422
    # The new language applies to this very message, not only to the next page.
    current_user.language = participant.language
    refresh()
    flash(_("Your settings are saved."), "success")
    return redirect(url_for("patient.settings"), 303)
