"""Sites and staff accounts (issue 14, item 1): one use case each, called by the admin pages and the CLI.

Every change is audited with the actor, what was before and after, and the reason where one is
asked. Ending sessions goes through diary.auth.devices (server-side device sessions) plus a bump of
auth_version, so a deactivated or reset account is signed out on its very next request.
"""

from __future__ import annotations

import re
import secrets
import zoneinfo
from datetime import datetime, time

from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, select

from diary import audit, study
from diary.auth import devices
from diary.auth.services import hash_secret
from diary.crypto import InvalidPhone, normalize_phone
from diary.models import ROLES, Site, StaffSite, StaffUser
from diary.services import FieldError

MIN_PASSWORD = 12
_SITE_CODE = re.compile(r"^[A-Z0-9-]{1,32}$")
_PHONE_CHARS = re.compile(r"^\+?[0-9][0-9 ()-]{1,30}$")
_EMERGENCY = re.compile(r"^[0-9]{2,16}$")
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
SITE_FIELDS = ("name", "timezone", "phone", "on_call_phone", "emergency_phone", "plt_lln", "quiet_start",
               "quiet_end")


class AdminError(FieldError):
    """An administrative change refused; `field` and `code` say why."""


def _reason(reason: str | None) -> str:
    reason = (reason or "").strip()
    if not reason:
        raise AdminError("reason", "required")
    return reason[:500]


# --- sites ---------------------------------------------------------------------------------


def _quiet_hours(quiet_start: str | time | None, quiet_end: str | time | None) -> tuple[time | None, time | None]:
    """A site's own quiet hours from two HH:MM values: both, or neither (the study's apply). The
    same time twice switches them off, as in study.toml."""
    ends = {}
    for field, value in (("quiet_start", quiet_start), ("quiet_end", quiet_end)):
        if isinstance(value, time):
            value = value.strftime("%H:%M")
        value = (value or "").strip()
        ends[field] = study.hhmm(value) if value else None
        if value and ends[field] is None:
            raise AdminError(field, "invalid")
    if (ends["quiet_start"] is None) != (ends["quiet_end"] is None):
        raise AdminError("quiet_end" if ends["quiet_end"] is None else "quiet_start", "pair")
    return ends["quiet_start"], ends["quiet_end"]


def _site_values(*, name: str, timezone: str, phone: str, on_call_phone: str | None, emergency_phone: str,
                 plt_lln: float | None, quiet_start: str | time | None, quiet_end: str | time | None) -> dict:
    name = (name or "").strip()
    if not name or len(name) > 200:
        raise AdminError("name", "required")
    try:
        zoneinfo.ZoneInfo(timezone or "")
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        raise AdminError("timezone", "unknown") from None
    phone = (phone or "").strip()
    if not _PHONE_CHARS.match(phone):
        raise AdminError("phone", "invalid")
    on_call = (on_call_phone or "").strip() or None
    if on_call:
        # Danger alerts are texted to it: it must be a number an SMS can reach.
        try:
            on_call = normalize_phone(on_call)
        except InvalidPhone:
            raise AdminError("on_call_phone", "invalid") from None
    emergency_phone = (emergency_phone or "").strip()
    if not _EMERGENCY.match(emergency_phone):
        raise AdminError("emergency_phone", "invalid")
    if plt_lln is not None and not 1 <= plt_lln <= 1500:
        raise AdminError("plt_lln", "out_of_range")
    quiet_start, quiet_end = _quiet_hours(quiet_start, quiet_end)
    return {"name": name, "timezone": timezone, "phone": phone, "on_call_phone": on_call,
            "emergency_phone": emergency_phone, "plt_lln": plt_lln, "quiet_start": quiet_start,
            "quiet_end": quiet_end}


def create_site(session: Session, *, code: str, actor: str, now: datetime, **fields) -> Site:
    code = (code or "").strip().upper()
    if not _SITE_CODE.match(code):
        raise AdminError("code", "invalid")
    site = Site(code=code, created_at=now, **_site_values(**fields))
    try:
        with session.begin_nested():
            session.add(site)
    except IntegrityError:
        raise AdminError("code", "taken") from None  # the unique site code decides
    audit.record(session, actor=actor, action="site_created", entity="Site", entity_id=site.id, site_id=site.id,
                 at=now, after={"code": code, **{k: getattr(site, k) for k in SITE_FIELDS}})
    return site


def update_site(session: Session, site: Site, *, actor: str, now: datetime, **fields) -> bool:
    """Change a site's settings; False when nothing changed."""
    values = _site_values(**fields)
    before = {k: getattr(site, k) for k in SITE_FIELDS if getattr(site, k) != values[k]}
    if not before:
        return False
    for key in before:
        setattr(site, key, values[key])
    session.add(site)
    audit.record(session, actor=actor, action="site_updated", entity="Site", entity_id=site.id, site_id=site.id,
                 at=now, before=before, after={k: values[k] for k in before})
    return True


# --- staff accounts ------------------------------------------------------------------------


def staff_site_ids(session: Session, staff_id: int) -> set[int]:
    return set(session.exec(select(StaffSite.site_id).where(StaffSite.staff_id == staff_id)).all())


def _check_scope(session: Session, role: str, site_ids: set[int]) -> None:
    if role not in ROLES:
        raise AdminError("role", "unknown")
    if site_ids and len(session.exec(select(Site.id).where(Site.id.in_(site_ids))).all()) != len(site_ids):
        raise AdminError("sites", "unknown")
    # Nurses and investigators see only their sites: without one they would see nothing.
    if role != "admin" and not site_ids:
        raise AdminError("sites", "required")


def temporary_password() -> str:
    """Shown once to the admin who creates or resets an account; it must be changed at first sign-in."""
    return secrets.token_urlsafe(12)


def create_staff(session: Session, *, email: str, name: str, role: str, site_ids: set[int], password: str,
                 actor: str, now: datetime, must_change_password: bool = True) -> StaffUser:
    email = (email or "").strip().lower()
    if not _EMAIL.match(email) or len(email) > 254:
        raise AdminError("email", "invalid")
    name = (name or "").strip()
    if not name or len(name) > 200:
        raise AdminError("name", "required")
    if len(password or "") < MIN_PASSWORD:
        raise AdminError("password", "too_short")
    _check_scope(session, role, site_ids)
    staff = StaffUser(email=email, name=name, role=role, password_hash=hash_secret(password),
                      must_change_password=must_change_password, created_at=now)
    try:
        with session.begin_nested():
            session.add(staff)
    except IntegrityError:
        raise AdminError("email", "taken") from None  # the unique e-mail decides
    for site_id in sorted(site_ids):
        session.add(StaffSite(staff_id=staff.id, site_id=site_id))
    audit.record(session, actor=actor, action="staff_created", entity="StaffUser", entity_id=staff.id, at=now,
                 after={"email": email, "role": role, "sites": _codes(session, site_ids),
                        "must_change_password": must_change_password})
    return staff


def _codes(session: Session, site_ids: set[int]) -> list[str]:
    if not site_ids:
        return []
    return sorted(session.exec(select(Site.code).where(Site.id.in_(site_ids))).all())


def _not_self(staff: StaffUser, actor_id: int | None, field: str = "account") -> None:
    # The acting admin stays an active admin with a working sign-in: administration cannot lock
    # itself out, and there is always at least one admin left.
    if actor_id is not None and staff.id == actor_id:
        raise AdminError(field, "self")


def update_staff(session: Session, staff: StaffUser, *, name: str, role: str, site_ids: set[int], actor: str,
                 actor_id: int | None, now: datetime) -> bool:
    """Change name, role and site scope; a change of role or sites ends the account's sessions, so
    the new scope applies from the next request. False when nothing changed."""
    name = (name or "").strip()
    if not name or len(name) > 200:
        raise AdminError("name", "required")
    _check_scope(session, role, site_ids)
    if role != staff.role:
        _not_self(staff, actor_id, "role")
    old_sites = staff_site_ids(session, staff.id)
    before, after = {}, {}
    if name != staff.name:
        before["name"], after["name"] = staff.name, name
        staff.name = name
    if role != staff.role:
        before["role"], after["role"] = staff.role, role
        staff.role = role
    if site_ids != old_sites:
        before["sites"], after["sites"] = _codes(session, old_sites), _codes(session, site_ids)
        for site_id in old_sites - site_ids:
            session.delete(session.get(StaffSite, (staff.id, site_id)))
        for site_id in site_ids - old_sites:
            session.add(StaffSite(staff_id=staff.id, site_id=site_id))
    if not after:
        return False
    ended = 0
    if "role" in after or "sites" in after:
        ended = _end_sessions(session, staff, now, "scope_changed")
    session.add(staff)
    audit.record(session, actor=actor, action="staff_updated", entity="StaffUser", entity_id=staff.id, at=now,
                 before=before, after={**after, "sessions_ended": ended})
    return True


def _end_sessions(session: Session, staff: StaffUser, now: datetime, reason: str) -> int:
    staff.auth_version += 1  # also ends cookies issued before device sessions existed
    session.add(staff)
    return devices.end_all(session, now, reason, staff_id=staff.id)


def deactivate_staff(session: Session, staff: StaffUser, *, reason: str, actor: str, actor_id: int | None,
                     now: datetime) -> int:
    """The account can no longer sign in, and every open session ends now; how many ended."""
    reason = _reason(reason)
    _not_self(staff, actor_id)
    if not staff.is_active:
        raise AdminError("account", "inactive")
    staff.is_active = False
    ended = _end_sessions(session, staff, now, "deactivated")
    audit.record(session, actor=actor, action="staff_deactivated", entity="StaffUser", entity_id=staff.id, at=now,
                 reason=reason, after={"sessions_ended": ended})
    return ended


def reactivate_staff(session: Session, staff: StaffUser, *, reason: str, actor: str, now: datetime) -> None:
    reason = _reason(reason)
    if staff.is_active:
        raise AdminError("account", "active")
    staff.is_active = True
    session.add(staff)
    audit.record(session, actor=actor, action="staff_reactivated", entity="StaffUser", entity_id=staff.id, at=now,
                 reason=reason)


def reset_totp(session: Session, staff: StaffUser, *, reason: str, actor: str, actor_id: int | None,
               now: datetime) -> int:
    """Forget the authenticator (a lost phone): the next sign-in enrols a new one. Sessions end."""
    reason = _reason(reason)
    _not_self(staff, actor_id)
    staff.totp_secret_enc = None
    staff.totp_last_step = None
    ended = _end_sessions(session, staff, now, "totp_reset")
    audit.record(session, actor=actor, action="staff_totp_reset", entity="StaffUser", entity_id=staff.id, at=now,
                 reason=reason, after={"sessions_ended": ended})
    return ended


def require_password_change(session: Session, staff: StaffUser, *, reason: str, actor: str,
                            actor_id: int | None, now: datetime, temporary: str | None = None) -> int:
    """The next sign-in must choose a new password first; open sessions end so that it is now.
    With `temporary`, the old password stops working too (a forgotten password)."""
    reason = _reason(reason)
    _not_self(staff, actor_id)
    staff.must_change_password = True
    if temporary is not None:
        staff.password_hash = hash_secret(temporary)
    ended = _end_sessions(session, staff, now, "password_change_required")
    audit.record(session, actor=actor, action="staff_password_change_required", entity="StaffUser",
                 entity_id=staff.id, at=now, reason=reason,
                 after={"sessions_ended": ended, "temporary_password_issued": temporary is not None})
    return ended


def change_own_password(session: Session, staff: StaffUser, *, new_password: str, now: datetime) -> None:
    """The staff member's own new password (required after an admin's reset); other sessions end."""
    from diary.auth.services import _verify

    if len(new_password or "") < MIN_PASSWORD:
        raise AdminError("password", "too_short")
    if _verify(staff.password_hash, new_password):
        raise AdminError("password", "unchanged")
    staff.password_hash = hash_secret(new_password)
    staff.must_change_password = False
    _end_sessions(session, staff, now, "password_changed")
    audit.record(session, actor=f"staff:{staff.id}", action="staff_password_changed", entity="StaffUser",
                 entity_id=staff.id, at=now)
