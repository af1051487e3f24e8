"""The symptom checklist. A danger answer shows the call-now instruction at once; the service
raises the staff flag in the same transaction as the report."""

from __future__ import annotations

from flask import flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_login import current_user

from diary import clock, db, study
from diary.auth import participant_required
from diary.errors import keep_typed
from diary.patient import bp
from diary.patient.common import cfg, me, my_site
from diary.patient.messages import SEVERITIES, SYMPTOM_GROUPS, symptom_error
from diary.services import day_cards
from diary.services.symptoms import SymptomError, report_symptoms


def _form_answers(form) -> list[dict]:
    return [{"key": key, "severity": form.get(f"severity-{key}")} for key in form.getlist("symptom")]


def _page(status: int = 200, **context):
    lang = me().language
    groups = [(group, [s for s in cfg().symptoms if s.group == group]) for group in study.SYMPTOM_GROUPS]
    return render_template("patient/symptoms.html", groups=[g for g in groups if g[1]], lang=lang,
                           site=my_site(), cfg=cfg(), severities=SEVERITIES, symptom_groups=SYMPTOM_GROUPS,
                           **context), status


@bp.get("/symptoms")
@participant_required
def symptoms():
    return _page(answers={}, note="")


@bp.post("/symptoms")
@participant_required
def report():
    now, answers = clock.now(), _form_answers(request.form)
    try:
        day_cards.check_client_key(request.form.get("client_key"))
        saved = report_symptoms(
            db.session(), cfg(), participant=me(), symptoms=answers, noticed_at=now,
            client_key=request.form["client_key"], source="participant", now=now,
            course_id=day_cards.running_course_id(db.session(), me(), cfg(), now), note=request.form.get("note"),
        )
    except (SymptomError, day_cards.DoseLogError) as error:
        return _page(422, error=symptom_error(error.code), note=request.form.get("note", ""),
                     answers={a["key"]: a["severity"] for a in answers})
    return _after_report(saved)


@keep_typed("patient.report")
def _report_expired(message: str):
    """A CSRF refusal (the page was open too long): the checklist again, as ticked and typed."""
    if getattr(current_user, "kind", None) != "participant":
        raise LookupError("nobody signed in: the plain error page")
    answers = _form_answers(request.form)
    return _page(400, error=message, note=request.form.get("note", ""),
                 answers={a["key"]: a["severity"] for a in answers})


def _after_report(saved):
    if saved.danger:
        # Rendered, not redirected: the instruction must appear even if the next request fails.
        chosen = [cfg().symptom(s["key"]) for s in saved.symptoms]
        danger = [s for s in chosen if s.danger]
        return render_template("patient/danger.html", danger=danger, lang=me().language, site=my_site(),
                               cfg=cfg(), emergency_first=any(s.emergency_first for s in danger))
    flash(_("Thank you. Your study team will see this. If you feel worse, call your study nurse."), "success")
    return redirect(url_for("patient.symptoms"), 303)
