"""A participant's contact details (issue 14, item 2): staff of the participant's site see the full
number behind an audited "show" with a tap-to-call link, correct the number and language with a
reason, and keep an emergency contact. Staff of other sites get 404 (participant_in_scope)."""

from __future__ import annotations

from flask import abort, flash, redirect, render_template, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_login import current_user

from diary import clock, db
from diary.auth import participant_in_scope, staff_required
from diary.extensions import htmx
from diary.services import contacts
from diary.staff.common import bp, cipher, show_refusal
from diary.staff.forms import ContactForm, EmergencyContactForm

CONTACT_ERRORS = {
    ("phone", "invalid"): _l("This is not a valid mobile number."),
    ("phone", "taken"): _l("This mobile number is already enrolled."),
    ("language", "unknown"): _l("Choose a language."),
    ("reason", "required"): _l("Give a reason."),
    ("name", "required"): _l("Enter the contact's name."),
    ("name", "too_long"): _l("The name is too long."),
    ("relation", "too_long"): _l("The relation is too long."),
}


@bp.app_template_global("masked_phone")
def masked_phone(participant, which: str = "participant") -> str | None:
    """The number as staff see it before "show": +86•••••••1111."""
    return contacts.masked(cipher(), participant, which)


def _page(p, *, contact_form=None, emergency_form=None, revealed=None, status=200):
    contact_form = contact_form or ContactForm(formdata=None, phone="", language=p.language)
    emergency_form = emergency_form or EmergencyContactForm(
        formdata=None, name=p.emergency_name or "", relation=p.emergency_relation or "")
    return render_template("staff/contact.html", p=p, contact_form=contact_form, emergency_form=emergency_form,
                           revealed=revealed or {}), status


@bp.get("/participants/<int:participant_id>/contact")
@staff_required()
def contact(participant_id: int):
    return _page(participant_in_scope(participant_id))


@bp.post("/participants/<int:participant_id>/phone/<which>")
@staff_required()
def show_phone(participant_id: int, which: str):
    """The full number, audited as shown; htmx swaps it in place of the masked one."""
    p = participant_in_scope(participant_id)
    if which not in contacts.WHICH:
        abort(404)
    number = contacts.reveal_phone(db.session(), cipher(), participant=p, which=which, staff_id=current_user.id,
                                   now=clock.now())
    if htmx and not htmx.boosted:
        return render_template("staff/partials/phone.html", p=p, which=which, number=number)
    return _page(p, revealed={which: number})


@bp.post("/participants/<int:participant_id>/contact")
@staff_required()
def correct_contact(participant_id: int):
    p = participant_in_scope(participant_id)
    form = ContactForm()
    if not form.validate():
        return _page(p, contact_form=form, status=400)
    try:
        changed = contacts.correct_contact(
            db.session(), cipher(), participant=p, phone=form.phone.data, language=form.language.data,
            reason=form.reason.data, staff_id=current_user.id, now=clock.now())
    except contacts.ContactError as exc:
        show_refusal(form, exc, CONTACT_ERRORS)
        return _page(p, contact_form=form, status=400)
    flash(_("Contact details corrected.") if changed else _("Nothing was changed."), "success" if changed else "info")
    return redirect(url_for("staff.contact", participant_id=p.id))


@bp.post("/participants/<int:participant_id>/emergency-contact")
@staff_required()
def set_emergency_contact(participant_id: int):
    p = participant_in_scope(participant_id)
    form = EmergencyContactForm()
    if not form.validate():
        return _page(p, emergency_form=form, status=400)
    try:
        contacts.set_emergency_contact(
            db.session(), cipher(), participant=p, name=form.name.data, relation=form.relation.data,
            phone=form.phone.data, reason=form.reason.data, staff_id=current_user.id, now=clock.now())
    except contacts.ContactError as exc:
        show_refusal(form, exc, CONTACT_ERRORS)
        return _page(p, emergency_form=form, status=400)
    flash(_("Emergency contact saved."), "success")
    return redirect(url_for("staff.contact", participant_id=p.id))
