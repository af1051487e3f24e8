"""Dashboards: the adherence grid and the flag queue (htmx filters and acknowledging, plain forms too)."""

from __future__ import annotations

from flask import current_app, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_login import current_user
from sqlmodel import select

from diary import clock, db
from diary.auth import staff_required
from diary.extensions import htmx
from diary.inputs import bounded, id_arg
from diary.models import COHORTS, Participant, StaffUser
from diary.services import adherence, review
from diary.services.flags import FlagError, acknowledge
from diary.services.flags import queue as flag_queue
from diary.staff.common import bp, flag_in_scope, my_sites, page_or_fragment, study_config
from diary.staff.forms import AckForm

PAGE_SIZE = 100


def _filters() -> adherence.Filters:
    args = request.args
    site_id = args.get("site", type=id_arg)
    if site_id is not None and not current_user.can_see_site(site_id):
        site_id = None
    return adherence.Filters(
        cohort=args.get("cohort") if args.get("cohort") in COHORTS else None,
        course_state=args.get("state", "running") if args.get("state", "running") in adherence.COURSE_STATES
        else None,
        flagged_only=args.get("flagged") == "1", site_id=site_id)


def _filter_args(filters: adherence.Filters) -> dict[str, str | int]:
    """The query string that keeps `filters` on page links and the headline's request."""
    args: dict[str, str | int] = {"state": filters.course_state or "all"}
    if filters.cohort:
        args["cohort"] = filters.cohort
    if filters.site_id is not None:
        args["site"] = filters.site_id
    if filters.flagged_only:
        args["flagged"] = "1"
    return args


@bp.get("/adherence")
@staff_required()
def adherence_grid():
    """The first screenful at once: one page of rows by study number, loaded alone (the same cost at
    any study size). The headline figures, the courses that need a look and the draw lists count
    every course the filters keep, so they come from /adherence/summary, which the page loads
    straight after."""
    filters = _filters()
    page = request.args.get("page", 1, type=lambda v: bounded(v, 1, 100_000))
    grid = adherence.grid_page(db.session(), study_config(), clock.now(), current_user.site_ids, filters, page=page,
                               page_size=PAGE_SIZE, lab_grace_hours=current_app.config["LAB_OVERDUE_HOURS"])
    return page_or_fragment(
        "staff/adherence.html", "staff/partials/adherence_results.html", grid=grid, filters=filters,
        sites=my_sites(), args=_filter_args(filters), page_size=PAGE_SIZE)


@bp.get("/adherence/summary")
@staff_required()
def adherence_summary():
    filters = _filters()
    grid = adherence.build_grid(db.session(), study_config(), clock.now(), current_user.site_ids, filters,
                                lab_grace_hours=current_app.config["LAB_OVERDUE_HOURS"])
    return page_or_fragment(
        "staff/adherence_summary.html", "staff/partials/adherence_summary.html", grid=grid, filters=filters,
        args=_filter_args(filters), awaiting=adherence.awaiting_decisions(db.session(), current_user.site_ids))


@bp.get("/flags")
@staff_required()
def flags():
    show = "all" if request.args.get("show") == "all" else "open"
    kind = request.args.get("kind") or None
    names = dict(db.session().exec(select(StaffUser.id, StaffUser.name)).all())
    rows = flag_queue(db.session(), current_user.site_ids, show=show, kind=kind)
    pauses = review.open_pauses_of_participants(db.session(), (flag.participant_id for flag, _p in rows))
    return page_or_fragment("staff/flags.html", "staff/partials/flag_list.html", rows=rows, show=show, kind=kind,
                            names=names, form=AckForm(formdata=None), pauses=pauses)


@bp.post("/flags/<int:flag_id>/acknowledge")
@staff_required()
def acknowledge_flag(flag_id: int):
    flag = flag_in_scope(flag_id)
    form = AckForm()
    s = db.session()
    error = None
    if form.validate():
        try:
            acknowledge(s, flag=flag, staff_id=current_user.id, note=form.note.data, now=clock.now())
        except FlagError as exc:
            error = _("Already acknowledged.") if exc.code == "already_acknowledged" else _("Write what was done.")
    else:
        error = _("Write what was done.")
    if htmx and not htmx.boosted:
        participant = s.get(Participant, flag.participant_id) if flag.participant_id else None
        names = dict(s.exec(select(StaffUser.id, StaffUser.name)).all())
        pauses = review.open_pauses_of_participants(s, [flag.participant_id])
        return render_template("staff/partials/flag.html", flag=flag, participant=participant, names=names,
                               form=form, error=error, pauses=pauses), 200 if error is None else 400
    flash(error or _("Flag acknowledged."), "error" if error else "success")
    back = request.form.get("next") or ""
    # Only back to a staff page: a crafted form must not turn this into an open redirect.
    return redirect(back if back.startswith("/staff/") and "//" not in back else url_for("staff.flags"))
