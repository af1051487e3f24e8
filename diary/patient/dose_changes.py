"""The dose-change notice: a signed change stays on the participant's pages until they tap
"I understand" (issue 10, finding 8). The tap is stored once, whatever the taps or phones."""

from __future__ import annotations

from flask import abort, redirect, render_template, url_for

from diary import clock, db
from diary.auth import participant_required
from diary.patient import bp
from diary.patient.common import me, wants_fragment
from diary.services import decisions


@bp.post("/dose-changes/<int:decision_id>/understood")
@participant_required
def dose_change_understood(decision_id: int):
    try:
        decisions.acknowledge_change(db.session(), participant=me(), decision_id=decision_id, now=clock.now())
    except decisions.DecisionError:
        # Another participant's decision is answered exactly like one that does not exist.
        abort(404)
    if wants_fragment():
        return render_template("patient/_dose_change_done.html")
    return redirect(url_for("patient.today"), 303)
