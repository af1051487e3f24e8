"""Staff pages. Site scope is enforced by diary.auth (staff_required, participant_in_scope)."""

from __future__ import annotations

import segno
from flask import Blueprint, current_app, render_template, url_for
from flask_login import current_user
from sqlmodel import select

from diary import clock, db
from diary.auth import participant_in_scope, policy, staff_required
from diary.auth import services as auth
from diary.crypto import mask_phone
from diary.models import Participant, Site

bp = Blueprint("staff", __name__, url_prefix="/staff")


@bp.get("/")
@staff_required()
def home():
    query = select(Participant, Site).join(Site).order_by(Site.code, Participant.study_number)
    if current_user.site_ids is not None:
        query = query.where(Participant.site_id.in_(current_user.site_ids))
    rows = db.session().exec(query).all()
    return render_template("staff/home.html", rows=rows)


@bp.get("/participants/<int:participant_id>")
@staff_required()
def participant(participant_id: int):
    p = participant_in_scope(participant_id)
    cipher = current_app.extensions["diary.cipher"]
    return render_template(
        "staff/participant.html", p=p, site=db.session().get(Site, p.site_id),
        phone=mask_phone(cipher.decrypt(p.phone_enc)),
    )


@bp.post("/participants/<int:participant_id>/activation")
@staff_required("nurse", "investigator", "admin")
def activation(participant_id: int):
    """A new one-time activation link, shown once as text and as a QR code."""
    p = participant_in_scope(participant_id)
    token = auth.issue_activation(db.session(), p, current_user.id, clock.now(), policy())
    link = activation_url(token)
    qr_svg = segno.make(link, error="m").svg_inline(scale=6, title=p.study_number)
    return render_template(
        "staff/activation.html", p=p, link=link, qr_svg=qr_svg,
        hours=current_app.config["ACTIVATION_HOURS"],
    )


def activation_url(token: str) -> str:
    base = current_app.config["PUBLIC_BASE_URL"]
    path = url_for("auth.activate", token=token)
    return base + path if base else url_for("auth.activate", token=token, _external=True)
