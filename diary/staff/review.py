"""Closing a clinical-review pause from the flag queue or the participant page (one step)."""

from __future__ import annotations

from flask import abort, flash, redirect, request, url_for
from flask_babel import gettext as _
from flask_login import current_user

from diary import clock, db
from diary.auth import participant_in_scope, staff_required
from diary.models import ReviewPause
from diary.services import review
from diary.staff.common import bp


@bp.post("/pauses/<int:pause_id>/close")
@staff_required()
def close_pause(pause_id: int):
    s = db.session()
    pause = s.get(ReviewPause, pause_id)
    if pause is None:
        abort(404)
    participant_in_scope(pause.participant_id)
    back = request.form.get("next") or ""
    # Only back to a staff page: a crafted form must not turn this into an open redirect.
    if not (back.startswith("/staff/") and "//" not in back):
        back = url_for("staff.participant", participant_id=pause.participant_id)
    try:
        review.close_pause(s, pause=pause, staff_id=current_user.id, kind="continue",
                           note=request.form.get("note"), now=clock.now())
    except review.PauseError as exc:
        flash(_("Write what was decided.") if exc.code == "note_required"
              else _("This review pause was already ended."), "error")
        return redirect(back)
    flash(_("Review pause ended: the participant sees today's dose again and reminders resume."), "success")
    return redirect(back)
