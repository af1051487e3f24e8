"""Administration in the app (issue 14, item 1): sites and staff accounts.

Scope: only admins reach these pages (403 for nurses and investigators). An admin is study-wide
(StaffPrincipal.site_ids is None, as everywhere else in the app), so they administer every site and
every account. An admin cannot deactivate, demote, reset or force a password change on their own
account here: administration cannot lock itself out, and one admin always remains.
"""

from __future__ import annotations

from flask import abort, current_app, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_login import current_user
from sqlmodel import select

from diary import clock, db, study
from diary.auth import staff_required
from diary.extensions import htmx
from diary.models import Site, StaffSite, StaffUser
from diary.services import administration as admin
from diary.staff.admin_forms import AccountActionForm, SiteForm, StaffForm
from diary.staff.common import bp, my_sites, show_refusal

ADMIN_ERRORS = {
    ("code", "invalid"): _l("Use capital letters, digits and dashes (at most 32)."),
    ("code", "taken"): _l("This site code is already used."),
    ("name", "required"): _l("Enter a name."),
    ("timezone", "unknown"): _l("Unknown time zone."),
    ("phone", "invalid"): _l("Enter a phone number (digits, spaces, dashes, a leading +)."),
    ("on_call_phone", "invalid"): _l("This is not a valid mobile number."),
    ("emergency_phone", "invalid"): _l("Enter the emergency number's digits, e.g. 120."),
    ("plt_lln", "out_of_range"): _l("Enter a value between 1 and 1500."),
    ("quiet_start", "invalid"): _l("Use HH:MM, e.g. 21:30."),
    ("quiet_end", "invalid"): _l("Use HH:MM, e.g. 07:00."),
    ("quiet_start", "pair"): _l("Give both times, or leave both empty for the study's quiet hours."),
    ("quiet_end", "pair"): _l("Give both times, or leave both empty for the study's quiet hours."),
    ("email", "invalid"): _l("Enter an e-mail address."),
    ("email", "taken"): _l("An account with this e-mail already exists."),
    ("role", "unknown"): _l("Choose a role."),
    ("role", "self"): _l("You cannot change your own role."),
    ("sites", "required"): _l("Nurses and investigators need at least one site."),
    ("sites", "unknown"): _l("Choose sites from the list."),
    ("reason", "required"): _l("Give a reason."),
    ("account", "self"): _l("You cannot do this to your own account."),
    ("account", "inactive"): _l("This account is already deactivated."),
    ("account", "active"): _l("This account is already active."),
}
ACTIONS = ("deactivate", "reactivate", "reset-totp", "require-password-change", "reset-password")


def _site_or_404(site_id: int) -> Site:
    site = db.session().get(Site, site_id)
    if site is None:
        abort(404)
    return site


def _staff_or_404(staff_id: int) -> StaffUser:
    staff = db.session().get(StaffUser, staff_id)
    if staff is None:
        abort(404)
    return staff


def _site_fields(form: SiteForm) -> dict:
    return {"name": form.name.data, "timezone": (form.timezone.data or "").strip(), "phone": form.phone.data,
            "on_call_phone": form.on_call_phone.data, "emergency_phone": form.emergency_phone.data,
            "plt_lln": form.plt_lln.data, "quiet_start": form.quiet_start.data, "quiet_end": form.quiet_end.data}


@bp.get("/admin/")
@staff_required("admin")
def admin_home():
    s = db.session()
    staff = s.exec(select(StaffUser).order_by(StaffUser.is_active.desc(), StaffUser.name)).all()
    scope: dict[int, list[str]] = {}
    for staff_id, code in s.exec(select(StaffSite.staff_id, Site.code).join(Site, Site.id == StaffSite.site_id)):
        scope.setdefault(staff_id, []).append(code)
    sites, cfg = my_sites(), current_app.extensions["diary.study"]
    quiet = {site.id: study.quiet_window(cfg, site.quiet_start, site.quiet_end) for site in sites}
    return render_template("staff/admin/index.html", sites=sites, staff=staff, scope=scope, quiet=quiet)


@bp.route("/admin/sites/new", methods=["GET", "POST"])
@staff_required("admin")
def admin_new_site():
    form = SiteForm(timezone=current_app.config["DIARY_TIMEZONE"])
    if form.validate_on_submit():
        try:
            site = admin.create_site(db.session(), code=form.code.data, actor=current_user.actor, now=clock.now(),
                                     **_site_fields(form))
        except admin.AdminError as exc:
            show_refusal(form, exc, ADMIN_ERRORS)
        else:
            flash(_("Site %(code)s created.", code=site.code), "success")
            return redirect(url_for("staff.admin_home"))
    return render_template("staff/admin/site_form.html", form=form, site=None), 400 if form.errors else 200


@bp.route("/admin/sites/<int:site_id>", methods=["GET", "POST"])
@staff_required("admin")
def admin_site(site_id: int):
    site = _site_or_404(site_id)
    form = SiteForm(obj=site if request.method == "GET" else None)
    if form.validate_on_submit():
        try:
            changed = admin.update_site(db.session(), site, actor=current_user.actor, now=clock.now(),
                                        **_site_fields(form))
        except admin.AdminError as exc:
            show_refusal(form, exc, ADMIN_ERRORS)
        else:
            flash(_("Site %(code)s saved.", code=site.code) if changed else _("Nothing was changed."),
                  "success" if changed else "info")
            return redirect(url_for("staff.admin_home"))
    return render_template("staff/admin/site_form.html", form=form, site=site), 400 if form.errors else 200


def _staff_form(**kw) -> StaffForm:
    form = StaffForm(**kw)
    form.sites.choices = [(site.id, f"{site.code} · {site.name}") for site in my_sites()]
    return form


@bp.route("/admin/staff/new", methods=["GET", "POST"])
@staff_required("admin")
def admin_new_staff():
    form = _staff_form()
    if form.validate_on_submit():
        password = admin.temporary_password()
        try:
            staff = admin.create_staff(db.session(), email=form.email.data, name=form.name.data,
                                       role=form.role.data, site_ids=set(form.sites.data or ()), password=password,
                                       actor=current_user.actor, now=clock.now())
        except admin.AdminError as exc:
            show_refusal(form, exc, ADMIN_ERRORS)
        else:
            # Shown once, on this page only (no redirect, no flash that a later page would repeat).
            return _account_page(staff, temporary=password, notice=_("Account created."))
    return render_template("staff/admin/staff_new.html", form=form), 400 if form.errors else 200


def _account_page(staff: StaffUser, *, form: StaffForm | None = None, action_form=None, action_error=None,
                  temporary: str | None = None, notice: str | None = None, status: int = 200):
    s = db.session()
    if form is None:
        form = _staff_form(formdata=None, obj=staff)
        form.sites.data = sorted(admin.staff_site_ids(s, staff.id))
    context = {"account": staff, "form": form, "action_form": action_form or AccountActionForm(formdata=None),
               "action_error": action_error, "temporary": temporary, "notice": notice,
               "is_self": staff.id == current_user.id}
    if htmx and not htmx.boosted and request.method == "POST" and action_form is not None:
        # An htmx account action swaps only the actions panel; a refusal is a 422 htmx swaps too.
        return render_template("staff/admin/_account_actions.html", **context), 422 if action_error else 200
    return render_template("staff/admin/staff_account.html", **context), status


@bp.route("/admin/staff/<int:staff_id>", methods=["GET", "POST"])
@staff_required("admin")
def admin_staff(staff_id: int):
    staff = _staff_or_404(staff_id)
    if request.method == "GET":
        return _account_page(staff)
    form = _staff_form()
    form.email.data = staff.email  # not changed here: it is the sign-in name the audit trail refers to
    if form.validate_on_submit():
        try:
            changed = admin.update_staff(db.session(), staff, name=form.name.data, role=form.role.data,
                                         site_ids=set(form.sites.data or ()), actor=current_user.actor,
                                         actor_id=current_user.id, now=clock.now())
        except admin.AdminError as exc:
            show_refusal(form, exc, ADMIN_ERRORS)
        else:
            flash(_("Account saved.") if changed else _("Nothing was changed."), "success" if changed else "info")
            return redirect(url_for("staff.admin_staff", staff_id=staff.id))
    return _account_page(staff, form=form, status=400)


@bp.post("/admin/staff/<int:staff_id>/<action>")
@staff_required("admin")
def admin_staff_action(staff_id: int, action: str):
    """Deactivate, reactivate, reset the authenticator, require a new password, or reset it."""
    staff = _staff_or_404(staff_id)
    if action not in ACTIONS:
        abort(404)
    form = AccountActionForm()
    if not form.validate():
        return _account_page(staff, action_form=form, action_error=_("Give a reason."), status=400)
    s, who = db.session(), {"actor": current_user.actor, "now": clock.now()}
    temporary = None
    try:
        if action == "deactivate":
            ended = admin.deactivate_staff(s, staff, reason=form.reason.data, actor_id=current_user.id, **who)
            message = _("Account deactivated; %(n)d open session(s) ended.", n=ended)
        elif action == "reactivate":
            admin.reactivate_staff(s, staff, reason=form.reason.data, **who)
            message = _("Account reactivated.")
        elif action == "reset-totp":
            admin.reset_totp(s, staff, reason=form.reason.data, actor_id=current_user.id, **who)
            message = _("Authenticator reset: a new one is set up at the next sign-in.")
        else:
            temporary = admin.temporary_password() if action == "reset-password" else None
            admin.require_password_change(s, staff, reason=form.reason.data, actor_id=current_user.id,
                                          temporary=temporary, **who)
            message = _("A new password will be required at the next sign-in.")
    except admin.AdminError as exc:
        error = str(ADMIN_ERRORS.get((exc.field, exc.code), _l("Not done.")))
        return _account_page(staff, action_form=form, action_error=error, status=400)
    if temporary is not None:
        return _account_page(staff, temporary=temporary, notice=message)  # shown once: no redirect
    if htmx and not htmx.boosted:
        return _account_page(staff, action_form=AccountActionForm(formdata=None), notice=message)
    flash(message, "success")
    return redirect(url_for("staff.admin_staff", staff_id=staff.id))
