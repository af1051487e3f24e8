"""What every staff view shares: the blueprint, scope look-ups and the htmx fragment rule."""

from __future__ import annotations

from flask import Blueprint, abort, current_app, flash, render_template
from flask_babel import lazy_gettext as _l
from flask_login import current_user

from diary import db
from diary.auth import in_scope, participant_in_scope
from diary.eligibility import Checklist
from diary.extensions import htmx
from diary.models import Course, Flag, Participant, Screening, Site
from diary.services.flag_details import flag_text
from diary.staff import vocab
from diary.study import StudyConfig

bp = Blueprint("staff", __name__, url_prefix="/staff")


@bp.context_processor
def _staff_globals() -> dict:
    return {"vocab": vocab, "cfg": study_config(), "flag_text": flag_text}


def study_config() -> StudyConfig:
    return current_app.extensions["diary.study"]


def checklist() -> Checklist:
    if "diary.screening" not in current_app.extensions:
        from diary.eligibility import load_checklist

        current_app.extensions["diary.screening"] = load_checklist(current_app.config.get("SCREENING_CONFIG"))
    return current_app.extensions["diary.screening"]


def cipher():
    return current_app.extensions["diary.cipher"]


def course_in_scope(course_id: int) -> tuple[Course, Participant]:
    """The course and its participant, if the signed-in staff member works at that site."""
    course = db.session().get(Course, course_id)
    if course is None:
        abort(404)
    return course, participant_in_scope(course.participant_id)


def screening_in_scope(screening_id: int) -> Screening:
    return in_scope(Screening, screening_id)


def flag_in_scope(flag_id: int) -> Flag:
    return in_scope(Flag, flag_id)


def my_sites() -> list[Site]:
    """The sites the signed-in staff member works at (every site for an admin)."""
    from sqlmodel import select

    query = select(Site).order_by(Site.code)
    if current_user.site_ids is not None:
        query = query.where(Site.id.in_(sorted(current_user.site_ids)))
    return list(db.session().exec(query).all())


def page_or_fragment(template: str, fragment: str, **context):
    """Contact.app: the whole page, or for an htmx (not boosted) request only the fragment it swaps."""
    if htmx and not htmx.boosted:
        return render_template(fragment, **context)
    return render_template(template, **context)


def show_refusal(form, exc, errors: dict) -> None:
    """A service's refusal (`exc.field`, `exc.code`) under its form field, translated through
    `errors`; a refusal about no particular field is flashed instead."""
    message = str(errors.get((exc.field, exc.code), _l("Please check this field.")))
    target = getattr(form, exc.field, None)
    if target is not None:
        target.errors = [message]
    else:
        flash(message, "error")
