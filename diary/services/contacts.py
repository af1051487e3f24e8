"""A participant's contact details for staff (issue 14, item 2): the full number behind an audited
"show", corrections of the number and language with a reason, and an emergency contact.

The audit trail is read by monitors: it says that a number was shown or changed, by whom and why,
and carries the number only masked (as the staff page shows it before "show")."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, select

from diary import audit
from diary.crypto import DataCipher, InvalidPhone, mask_phone, normalize_phone
from diary.models import LANGUAGES, Participant
from diary.services import FieldError

WHICH = ("participant", "emergency")


class ContactError(FieldError):
    """A contact change refused."""


def _reason(reason: str | None) -> str:
    reason = (reason or "").strip()
    if not reason:
        raise ContactError("reason", "required")
    return reason[:500]


def phone_of(cipher: DataCipher, participant: Participant, which: str = "participant") -> str | None:
    token = participant.phone_enc if which == "participant" else participant.emergency_phone_enc
    return cipher.decrypt(token) if token else None


def masked(cipher: DataCipher, participant: Participant, which: str = "participant") -> str | None:
    number = phone_of(cipher, participant, which)
    return mask_phone(number) if number else None


def reveal_phone(session: Session, cipher: DataCipher, *, participant: Participant, which: str, staff_id: int,
                 now: datetime) -> str | None:
    """The full number, recorded in the audit trail as shown to this staff member."""
    if which not in WHICH:
        raise ContactError("which", "unknown")
    number = phone_of(cipher, participant, which)
    if number is None:
        return None
    audit.record(session, actor=f"staff:{staff_id}", action="phone_shown", entity="Participant",
                 entity_id=participant.id, site_id=participant.site_id, participant_id=participant.id, at=now,
                 after={"which": which, "phone": mask_phone(number)})
    return number


def correct_contact(session: Session, cipher: DataCipher, *, participant: Participant, phone: str, language: str,
                    reason: str, staff_id: int, now: datetime) -> bool:
    """Correct the participant's number and/or language; False when nothing changed. The number
    stays unique: the database's unique look-up hash refuses one that another participant has."""
    reason = _reason(reason)
    if language not in LANGUAGES:
        raise ContactError("language", "unknown")
    try:
        e164 = normalize_phone(phone)
    except InvalidPhone:
        raise ContactError("phone", "invalid") from None
    old_number = phone_of(cipher, participant)
    before, after, values = {}, {}, {}
    if e164 != old_number:
        # Under an older key (a rotation under way) the same number has another hash: look that up too.
        others = session.exec(select(Participant.id).where(
            Participant.phone_hash.in_(cipher.lookup_hashes(e164)), Participant.id != participant.id)).first()
        if others is not None:
            raise ContactError("phone", "taken")
        values.update(phone_enc=cipher.encrypt(e164), phone_hash=cipher.lookup_hash(e164))
        before["phone"], after["phone"] = mask_phone(old_number), mask_phone(e164)
    if language != participant.language:
        before["language"], after["language"] = participant.language, language
        values["language"] = language
    if not after:
        return False
    try:
        # The change is made inside the savepoint (begin_nested() first flushes what is pending, outside
        # it): a refusal then leaves the participant and the request's transaction as they were.
        with session.begin_nested():
            for name, value in values.items():
                setattr(participant, name, value)
            session.add(participant)
            session.flush()
    except IntegrityError:
        # The same number saved for someone else a moment ago: uq on phone_hash decides.
        raise ContactError("phone", "taken") from None
    audit.record(session, actor=f"staff:{staff_id}", action="contact_corrected", entity="Participant",
                 entity_id=participant.id, site_id=participant.site_id, participant_id=participant.id, at=now,
                 before=before, after=after, reason=reason)
    return True


def set_emergency_contact(session: Session, cipher: DataCipher, *, participant: Participant, name: str,
                          relation: str, phone: str, reason: str, staff_id: int, now: datetime) -> None:
    """Keep (or, with every field empty, remove) the emergency contact: a name and a phone are needed."""
    reason = _reason(reason)
    name, relation, phone = (name or "").strip(), (relation or "").strip(), (phone or "").strip()
    if name or relation or phone:
        if not name:
            raise ContactError("name", "required")
        if len(name) > 200:
            raise ContactError("name", "too_long")
        if len(relation) > 64:
            raise ContactError("relation", "too_long")
        try:
            e164 = normalize_phone(phone)
        except InvalidPhone:
            raise ContactError("phone", "invalid") from None
    else:
        e164 = None
    before = {"relation": participant.emergency_relation,
              "phone": masked(cipher, participant, "emergency"), "named": bool(participant.emergency_name)}
    participant.emergency_name = name or None
    participant.emergency_relation = relation or None
    participant.emergency_phone_enc = cipher.encrypt(e164) if e164 else None
    session.add(participant)
    audit.record(session, actor=f"staff:{staff_id}", action="emergency_contact_set", entity="Participant",
                 entity_id=participant.id, site_id=participant.site_id, participant_id=participant.id, at=now,
                 before=before, after={"relation": relation or None, "phone": mask_phone(e164) if e164 else None,
                                       "named": bool(name)},
                 reason=reason)
