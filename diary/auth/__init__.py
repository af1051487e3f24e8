"""Who is signed in, and the one place where roles and site scope are enforced."""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps

from flask import Flask, abort, current_app, flash, redirect, request, session, url_for
from flask_babel import gettext as _
from flask_htmx.responses import HTMXResponseClientRedirect
from flask_login import UserMixin, current_user, logout_user
from sqlmodel import select

from diary import clock, db
from diary.auth import devices
from diary.auth.services import Policy
from diary.auth.sms_limits import ResetLimits
from diary.extensions import htmx, login_manager
from diary.models import Participant, StaffSite, StaffUser


class StaffPrincipal(UserMixin):
    kind = "staff"
    language = None
    timezone = None

    def __init__(self, staff: StaffUser, site_ids: frozenset[int] | None, device: str):
        self.staff = staff
        self.device = device  # the DeviceSession token this browser carries
        self.id = staff.id
        self.role = staff.role
        self.name = staff.name
        # None means every site (admins); otherwise the sites this person works at.
        self.site_ids = site_ids

    def get_id(self) -> str:
        return f"staff:{self.staff.id}:{self.staff.auth_version}:{self.device}"

    def can_see_site(self, site_id: int) -> bool:
        return self.site_ids is None or site_id in self.site_ids

    @property
    def actor(self) -> str:
        return f"staff:{self.id}"


class ParticipantPrincipal(UserMixin):
    kind = "participant"

    def __init__(self, participant: devices.SignedInParticipant, device: str,
                 site: devices.SiteOfParticipant | None = None):
        # The participant's own row as their pages read it, read-only: a service that changes it
        # loads the row (patient/settings.py).
        self.participant = participant
        self.device = device
        self.site = site  # loaded with the participant on each request (auth.devices.find_open)
        self.id = participant.id
        self.language = participant.language
        self.timezone = participant.timezone

    def get_id(self) -> str:
        return f"participant:{self.participant.id}:{self.participant.auth_version}:{self.device}"

    @property
    def actor(self) -> str:
        return f"participant:{self.id}"


def staff_principal(staff: StaffUser, device: str) -> StaffPrincipal:
    if staff.role == "admin":
        return StaffPrincipal(staff, None, device)
    rows = db.session().exec(select(StaffSite.site_id).where(StaffSite.staff_id == staff.id))
    return StaffPrincipal(staff, frozenset(rows.all()), device)


def _load_user(user_id: str):
    # The id carries auth_version (a PIN or password change ends every other session) and the
    # device session, which sign-out ends on the server: a copied cookie stops working too.
    try:
        kind, raw_id, version, device = user_id.split(":")
        pk, version_no = int(raw_id), int(version)
    except ValueError:
        return None
    s = db.session()
    if kind == "staff":
        found = devices.find_open(s, StaffUser, pk, device)
        if found and found[0].is_active and found[0].auth_version == version_no:
            devices.seen(s, found[1], clock.now())
            return staff_principal(found[0], device)
    elif kind == "participant":
        found = devices.find_open(s, Participant, pk, device)
        if found and found[0].status == "active" and found[0].auth_version == version_no:
            devices.seen(s, found[1], clock.now())
            return ParticipantPrincipal(found[0], device, found[2])
    return None


def _unauthorized():
    target = "auth.staff_login" if request.blueprint == "staff" else "auth.participant_login"
    url = url_for(target, next=request.full_path if request.method == "GET" else None)
    if htmx:
        # An expired session inside an htmx swap would otherwise paste the sign-in page into a fragment.
        return HTMXResponseClientRedirect(url)
    return redirect(url)


def policy() -> Policy:
    c = current_app.config
    return Policy(
        max_failures=c["LOGIN_MAX_FAILURES"],
        lock_minutes=c["LOGIN_LOCK_MINUTES"],
        activation_hours=c["ACTIVATION_HOURS"],
        pin_reset_minutes=c["PIN_RESET_MINUTES"],
    )


def reset_limits() -> ResetLimits:
    c = current_app.config
    return ResetLimits(per_hour=c["PIN_RESET_PER_HOUR"], per_day=c["PIN_RESET_PER_DAY"],
                       anonymous_sms_per_hour=c["ANONYMOUS_SMS_PER_HOUR"])


def staff_required(*roles: str) -> Callable:
    """Signed-in staff with one of `roles` (any role when none is given); others get 403."""

    def decorator(view: Callable) -> Callable:
        @wraps(view)
        def wrapped(*args, **kwargs):
            if not current_user.is_authenticated:
                return _unauthorized()
            if current_user.kind != "staff" or (roles and current_user.role not in roles):
                abort(403)
            return view(*args, **kwargs)

        return wrapped

    return decorator


def participant_required(view: Callable) -> Callable:
    @wraps(view)
    def wrapped(*args, **kwargs):
        if not current_user.is_authenticated:
            return _unauthorized()
        if current_user.kind != "participant":
            abort(403)
        return view(*args, **kwargs)

    return wrapped


def in_scope(model: type, pk: int):
    """A row that has a `site_id`, if the signed-in staff member works at that site; 404 otherwise.

    Another site's row answers exactly as a missing one does: a 403 would tell a curious
    nurse which ids exist elsewhere (an existence oracle)."""
    row = db.session().get(model, pk)
    if row is None or not current_user.can_see_site(row.site_id):
        abort(404)
    return row


def participant_in_scope(participant_id: int) -> Participant:
    """The participant, if the signed-in staff member works at their site; 404 otherwise."""
    return in_scope(Participant, participant_id)


STAFF_SEEN = "staff_seen"


def _may_be_staff() -> bool:
    """Whether this request can be a staff member's, read from the signed ids Flask-Login loads
    the person from (the session's, else the remember cookie's) without loading anyone: a
    participant's request or a visitor's is not one. Both ids are signed with SECRET_KEY, and
    each names its kind ("staff:…", "participant:…"); a staff member is never given a remember
    cookie, but one naming staff would still be checked."""
    remembered = request.cookies.get(current_app.config.get("REMEMBER_COOKIE_NAME", "remember_token"), "")
    ids = (session.get("_user_id"), remembered.rpartition("|")[0])
    return any(isinstance(i, str) and i.startswith("staff:") for i in ids)


def _end_idle_staff_sessions():
    """Staff are signed out after STAFF_IDLE_TIMEOUT without a request (a shared ward computer).

    The cookie itself lives as long as a participant's (PERMANENT_SESSION_LIFETIME), so the
    idle rule is enforced here, against the app's clock, for staff only. Only a request that
    can be staff's loads the person here: a participant's is loaded, and its device session
    checked, by the view that needs it (participant_required), and a static file or a sign-in
    page needs nobody (issue 15)."""
    if not _may_be_staff() or not current_user.is_authenticated or current_user.kind != "staff":
        return None
    now = clock.now().timestamp()
    seen = session.get(STAFF_SEEN)
    if seen is None or now - seen > current_app.config["STAFF_IDLE_TIMEOUT"].total_seconds():
        devices.end(db.session(), current_user.device, clock.now(), "idle")
        session.clear()
        logout_user()
        flash(_("You were signed out after a period of inactivity."), "info")
        return _unauthorized()
    session[STAFF_SEEN] = now
    return None


def init_app(app: Flask) -> None:
    app.before_request(_end_idle_staff_sessions)
    login_manager.user_loader(_load_user)
    login_manager.unauthorized_handler(_unauthorized)
    login_manager.session_protection = "basic"
