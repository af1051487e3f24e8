"""The participant's settings page; the rules and the audit trail are in the service."""

from __future__ import annotations

from flask import flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_babel import refresh
from flask_login import current_user

from diary import clock, db
from diary.auth import participant_required
from diary.patient import bp
from diary.patient.common import cfg, me
from diary.patient.messages import settings_error
from diary.services.participant_settings import SettingsError, update_settings


@bp.get("/settings")
@participant_required
def settings():
    p = me()
    return render_template("patient/settings.html", values={
        "reminder_time": p.reminder_time, "language": p.language, "sms": "on" if p.sms_opt_in else "off"})


@bp.post("/settings")
@participant_required
def save_settings():
    form = request.form
    values = {name: form.get(name, "") for name in ("reminder_time", "language", "sms")}
    try:
        if values["sms"] not in ("on", "off"):
            raise SettingsError("sms", "invalid")
        update_settings(db.session(), participant=me(), cfg=cfg(), reminder_time=values["reminder_time"],
                        language=values["language"], sms_opt_in=values["sms"] == "on", now=clock.now())
    except SettingsError as error:
        db.session().rollback()
        return render_template("patient/settings.html", values=values, field=error.field,
                               error=settings_error(error.field, error.code, cfg())), 422
    db.session().commit()
    # The new language applies to this very message, not only to the next page.
    current_user.language = me().language
    refresh()
    flash(_("Your settings are saved."), "success")
    return redirect(url_for("patient.settings"), 303)
