"""Sign-in use cases: staff password + TOTP, participant activation, PIN and PIN reset.

Every function takes the session and the instant `now`; none reads the clock or the request, and
none commits (the request's unit of work does, diary/db.py). A SignInError leaves in the session
exactly what the refusal must keep (a wrong secret's count, the lock it reached, their audit
event; nothing for any other refusal): the caller commits it even though it answers 401.
"""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

import pyotp
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlmodel import Session, select

from diary import audit
from diary.auth import devices, lockout, sms_limits
from diary.auth.sms_limits import ResetLimits
from diary.crypto import DataCipher, InvalidPhone, normalize_phone, token_hash
from diary.models import AccessCode, Participant, StaffUser

PIN_RE = re.compile(r"^\d{4,6}$")
_hasher = PasswordHasher()
# A dummy hash to verify against when the account does not exist, so that the response
# time does not tell an attacker which phone numbers or e-mails are enrolled.
_DUMMY_HASH = _hasher.hash("not-a-real-secret")


def configure_hasher(*, time_cost: int, memory_kib: int, parallelism: int) -> None:
    """Set the argon2 cost of new hashes (ARGON2_* settings); existing hashes carry their own.

    Process-wide because hashes are made outside requests too (CLI, demo); create_app calls it.
    """
    global _hasher, _DUMMY_HASH
    wanted = (time_cost, memory_kib, parallelism)
    if (_hasher.time_cost, _hasher.memory_cost, _hasher.parallelism) == wanted:
        return
    _hasher = PasswordHasher(time_cost=time_cost, memory_cost=memory_kib, parallelism=parallelism)
    # The dummy must cost what a real verification costs, or timing tells enrolment apart.
    _DUMMY_HASH = _hasher.hash("not-a-real-secret")


def hasher_parameters() -> dict[str, int]:
    return {"time_cost": _hasher.time_cost, "memory_kib": _hasher.memory_cost,
            "parallelism": _hasher.parallelism}


@dataclass(frozen=True)
class Policy:
    max_failures: int = 5
    lock_minutes: int = 15
    activation_hours: int = 72
    pin_reset_minutes: int = 10


class SignInError(Exception):
    """Sign-in refused. `reason` is one of: invalid, locked, inactive, expired."""

    def __init__(self, reason: str, locked_until: datetime | None = None):
        super().__init__(reason)
        self.reason = reason
        self.locked_until = locked_until


def hash_secret(secret: str) -> str:
    return _hasher.hash(secret)


def _verify(hash_: str | None, secret: str) -> bool:
    try:
        return _hasher.verify(hash_ or _DUMMY_HASH, secret) and hash_ is not None
    except (VerificationError, InvalidHashError):
        return False


def _claim(session: Session, account: StaffUser | Participant, now: datetime) -> int:
    """Count this attempt before the secret is checked (see lockout.py); refuses a locked account."""
    counted = lockout.claim_attempt(session, account, now)
    if counted is None:
        fresh = session.get(type(account), account.id, populate_existing=True)
        raise SignInError("locked", fresh.locked_until if fresh else None)
    return counted


def _refuse(session: Session, reason: str, account: StaffUser | Participant | None = None) -> None:
    # Not a wrong secret (inactive account, expired code): the attempt claimed for `account` is not counted.
    if account is not None:
        lockout.uncount(session, account)
    raise SignInError(reason)


def _fail(session: Session, account, counted: int, now: datetime, policy: Policy, actor: str, what: str) -> None:
    """A wrong secret: the attempt that reached the configured count locks the account."""
    locked_until = None
    if counted >= policy.max_failures:
        locked_until = lockout.lock(session, account, now, policy.lock_minutes)
    audit.record(
        session, actor=actor, action="sign_in_failed" if locked_until is None else "account_locked",
        entity=type(account).__name__, entity_id=account.id, at=now,
        site_id=getattr(account, "site_id", None),
        participant_id=account.id if isinstance(account, Participant) else None,
        after={"what": what, "locked_until": locked_until},
    )
    if locked_until is not None:
        raise SignInError("locked", locked_until)
    raise SignInError("invalid")


def _succeed(session: Session, account, now: datetime, actor: str, action: str) -> None:
    lockout.clear(session, account)
    audit.record(
        session, actor=actor, action=action, entity=type(account).__name__, entity_id=account.id,
        at=now, site_id=getattr(account, "site_id", None),
        participant_id=account.id if isinstance(account, Participant) else None,
    )


# --- staff ---------------------------------------------------------------------------------


def check_staff_password(
    session: Session, email: str, password: str, now: datetime, policy: Policy
) -> StaffUser:
    """First factor. Raises SignInError; on success the second factor (if any) is still due."""
    staff = session.exec(select(StaffUser).where(StaffUser.email == email.strip().lower())).first()
    if staff is None:
        _verify(None, password)
        raise SignInError("invalid")
    counted = _claim(session, staff, now)
    if not _verify(staff.password_hash, password):
        _fail(session, staff, counted, now, policy, f"staff:{staff.id}", "password")
    if not staff.is_active:
        _refuse(session, "inactive", staff)
    # A right password alone is not a sign-in: earlier failures still count until the second factor.
    lockout.uncount(session, staff)
    return staff


def reauthenticate(session: Session, staff: StaffUser, password: str, now: datetime, policy: Policy) -> None:
    """An electronic signature: the signed-in person re-enters their password (21 CFR Part 11).
    Wrong passwords count towards the same lock-out as at sign-in. Raises SignInError."""
    counted = _claim(session, staff, now)
    if not _verify(staff.password_hash, password or ""):
        _fail(session, staff, counted, now, policy, f"staff:{staff.id}", "signature")
    if not staff.is_active:
        _refuse(session, "inactive", staff)
    lockout.uncount(session, staff)


def totp_for(staff: StaffUser, cipher: DataCipher) -> pyotp.TOTP | None:
    if not staff.totp_secret_enc:
        return None
    return pyotp.TOTP(cipher.decrypt(staff.totp_secret_enc))


def check_staff_totp(
    session: Session, staff: StaffUser, code: str, now: datetime, policy: Policy,
    cipher: DataCipher, secret: str | None = None,
) -> None:
    """Second factor; with `secret` it also confirms a new enrolment and stores the secret."""
    counted = _claim(session, staff, now)
    totp = pyotp.TOTP(secret) if secret else totp_for(staff, cipher)
    code = re.sub(r"\s", "", code or "")
    step = _matching_step(totp, code, now) if totp else None
    # The step is claimed in the database: two requests with one code cannot both pass.
    if step is None or not lockout.claim_totp_step(session, staff, step):
        _fail(session, staff, counted, now, policy, f"staff:{staff.id}", "totp")
    if secret:
        staff.totp_secret_enc = cipher.encrypt(secret).decode()
        audit.record(session, actor=f"staff:{staff.id}", action="totp_enrolled",
                     entity="StaffUser", entity_id=staff.id, at=now)
    _succeed(session, staff, now, f"staff:{staff.id}", "staff_signed_in")


def _matching_step(totp: pyotp.TOTP, code: str, now: datetime) -> int | None:
    # One step either side tolerates a phone clock 30 s off.
    step = int(now.timestamp()) // totp.interval
    for candidate in (step, step - 1, step + 1):
        if secrets.compare_digest(totp.generate_otp(candidate), code):
            return candidate
    return None


def new_totp_secret() -> str:
    return pyotp.random_base32()


def record_staff_sign_in(session: Session, staff: StaffUser, now: datetime) -> None:
    """Sign-in complete without a second factor (only where TOTP is not required)."""
    _succeed(session, staff, now, f"staff:{staff.id}", "staff_signed_in")


# --- participants --------------------------------------------------------------------------


def issue_activation(
    session: Session, participant: Participant, staff_id: int, now: datetime, policy: Policy
) -> str:
    """A one-time activation token for the participant's phone. Earlier unused ones stop working."""
    for old in session.exec(
        select(AccessCode).where(
            AccessCode.participant_id == participant.id,
            AccessCode.purpose == "activation",
            AccessCode.used_at.is_(None),
        )
    ):
        old.used_at = now
        session.add(old)
    token = secrets.token_urlsafe(32)
    session.add(AccessCode(
        participant_id=participant.id, purpose="activation", code_hash=token_hash(token),
        expires_at=now + timedelta(hours=policy.activation_hours), created_by=staff_id,
    ))
    audit.record(session, actor=f"staff:{staff_id}", action="activation_issued",
                 entity="Participant", entity_id=participant.id, at=now,
                 site_id=participant.site_id, participant_id=participant.id)
    return token


def find_activation(session: Session, token: str, now: datetime) -> AccessCode:
    code = session.exec(
        select(AccessCode).where(
            AccessCode.code_hash == token_hash(token), AccessCode.purpose == "activation"
        )
    ).first()
    if code is None or code.used_at is not None or code.expires_at <= now:
        raise SignInError("expired")
    return code


def activate(session: Session, token: str, pin: str, now: datetime) -> Participant:
    """Use the activation token once to set the participant's PIN: of any number of requests
    with one link, however simultaneous, exactly one sets a PIN."""
    if not PIN_RE.match(pin or ""):
        raise ValueError("pin_format")
    code = find_activation(session, token, now)
    participant = session.get(Participant, code.participant_id)
    if participant is None or participant.status != "active":
        raise SignInError("inactive")
    if not lockout.consume_code(session, code.id, now):
        _refuse(session, "expired")
    _set_pin(session, participant, pin, now)
    _succeed(session, participant, now, f"participant:{participant.id}", "participant_activated")
    return participant


def _set_pin(session: Session, participant: Participant, pin: str, now: datetime) -> None:
    if not PIN_RE.match(pin):
        raise ValueError("pin_format")
    participant.pin_hash = hash_secret(pin)
    # A new PIN signs out every other phone that was signed in with the old one.
    participant.auth_version += 1
    devices.end_all(session, now, "pin_changed", participant_id=participant.id)


def find_participant_by_phone(session: Session, raw_phone: str, cipher: DataCipher) -> Participant | None:
    try:
        phone = normalize_phone(raw_phone)
    except InvalidPhone:
        return None
    return session.exec(
        select(Participant).where(Participant.phone_hash.in_(cipher.lookup_hashes(phone)))
    ).first()


def check_pin(
    session: Session, raw_phone: str, pin: str, now: datetime, policy: Policy, cipher: DataCipher
) -> Participant:
    participant = find_participant_by_phone(session, raw_phone, cipher)
    if participant is None:
        _verify(None, pin)
        raise SignInError("invalid")
    counted = _claim(session, participant, now)
    if not _verify(participant.pin_hash, pin):
        _fail(session, participant, counted, now, policy, f"participant:{participant.id}", "pin")
    if participant.status != "active":
        _refuse(session, "inactive", participant)
    _succeed(session, participant, now, f"participant:{participant.id}", "participant_signed_in")
    return participant


@dataclass(frozen=True)
class PinReset:
    participant: Participant
    code: str
    access_code_id: int  # unique per code: the outbox key of the SMS that carries it


def issue_pin_reset(
    session: Session, raw_phone: str, now: datetime, policy: Policy, cipher: DataCipher,
    limits: ResetLimits | None = None,
) -> PinReset | None:
    """A 6-digit code for an enrolled, active number within the SMS limits; None otherwise (the
    caller says the same either way)."""
    limits = limits or ResetLimits()
    participant = find_participant_by_phone(session, raw_phone, cipher)
    if participant is None or participant.status != "active":
        return None
    if not sms_limits.phone_allows_a_code(session, participant, now, limits):
        return None
    if not sms_limits.take_anonymous_sms(session, now, limits.anonymous_sms_per_hour):
        return None
    code = f"{secrets.randbelow(10**6):06d}"
    for old in session.exec(
        select(AccessCode).where(
            AccessCode.participant_id == participant.id,
            AccessCode.purpose == "pin_reset",
            AccessCode.used_at.is_(None),
        )
    ):
        old.used_at = now
        session.add(old)
    access_code = AccessCode(
        participant_id=participant.id, purpose="pin_reset",
        code_hash=token_hash(f"{participant.id}:{code}"),
        expires_at=now + timedelta(minutes=policy.pin_reset_minutes), created_at=now,
    )
    session.add(access_code)
    audit.record(session, actor=f"participant:{participant.id}", action="pin_reset_requested",
                 entity="Participant", entity_id=participant.id, at=now,
                 site_id=participant.site_id, participant_id=participant.id)
    session.flush()
    return PinReset(participant, code, access_code.id)


def reset_pin(
    session: Session, raw_phone: str, code: str, new_pin: str, now: datetime, policy: Policy,
    cipher: DataCipher,
) -> Participant:
    participant = find_participant_by_phone(session, raw_phone, cipher)
    if participant is None:
        raise SignInError("invalid")
    counted = _claim(session, participant, now)
    pending = session.exec(
        select(AccessCode).where(
            AccessCode.participant_id == participant.id,
            AccessCode.purpose == "pin_reset",
            AccessCode.used_at.is_(None),
        )
    ).first()
    if pending is None or pending.expires_at <= now:
        _refuse(session, "expired", participant)
    if not secrets.compare_digest(pending.code_hash, token_hash(f"{participant.id}:{code.strip()}")):
        lockout.count_wrong_code(session, pending.id, now, policy.max_failures)  # a guessed-at code is burnt
        _fail(session, participant, counted, now, policy, f"participant:{participant.id}", "pin_reset_code")
    if not PIN_RE.match(new_pin or ""):
        raise ValueError("pin_format")  # not a SignInError: the request rolls back, nothing counted
    # One code, one new PIN: a second request with the same code loses here.
    if not lockout.consume_code(session, pending.id, now):
        _refuse(session, "expired", participant)
    _set_pin(session, participant, new_pin, now)
    _succeed(session, participant, now, f"participant:{participant.id}", "pin_reset")
    return participant
