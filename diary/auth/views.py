"""Sign-in pages. Views translate requests; the decisions are in auth/services.py."""

from __future__ import annotations

import time
from datetime import timedelta
from urllib.parse import urlsplit

from flask import (
    Blueprint,
    abort,
    current_app,
    flash,
    redirect,
    render_template,
    request,
    session,
    url_for,
)
from flask_babel import gettext as _
from flask_login import current_user, login_user, logout_user

from diary import clock, db
from diary.auth import STAFF_SEEN, devices, policy, reset_limits, staff_principal
from diary.auth import services as auth
from diary.auth.forms import (
    ChoosePinForm,
    ForgotPinForm,
    NewPasswordForm,
    ParticipantLoginForm,
    ResetPinForm,
    StaffLoginForm,
    TotpForm,
)
from diary.errors import keep_typed
from diary.extensions import limiter
from diary.messaging import outbox
from diary.models import Site, StaffUser

bp = Blueprint("auth", __name__)
login_limit = limiter.limit(lambda: current_app.config["LOGIN_RATE_LIMIT"], methods=["POST"])
# A password check without its second factor is only good for a few minutes.
PENDING_MINUTES = 5


def _cipher():
    return current_app.extensions["diary.cipher"]


def _safe_next(default: str) -> str:
    target = request.args.get("next") or ""
    # Only same-site paths: an open redirect after sign-in is a phishing tool. Browsers read
    # "\" as "/" and drop tabs and newlines, so "/\evil.example" and "/\t/evil.example" mean
    # "//evil.example" to them; refuse anything with those rather than trust later escaping.
    if "\\" in target or any(ch.isspace() or not ch.isprintable() for ch in target):
        return default
    parts = urlsplit(target)
    if target.startswith("/") and not target.startswith("//") and not parts.netloc and not parts.scheme:
        return target
    return default


def _refused(error: auth.SignInError, mismatch: str | None = None) -> str:
    """A refused sign-in: keep what it counted, then the message to show with the 401/410.

    The answer is an error, so the unit of work would roll back; but a wrong secret's count, the
    lock it reached and their audit events must stay, or every guess would be free (lockout.py)."""
    db.commit_now()
    return _refusal(error, mismatch)


def _refusal(error: auth.SignInError, mismatch: str | None = None) -> str:
    """What a refused sign-in says. `mismatch` names what was typed (the same words whether the
    account exists or not, so the answer reveals nothing)."""
    if error.reason == "locked":
        return _(
            "Too many wrong attempts. Please wait %(minutes)d minutes and try again,"
            " or call your study nurse.", minutes=policy().lock_minutes,
        )
    if error.reason == "inactive":
        return _("This account is not active. Please contact the study team.")
    if error.reason == "expired":
        return _("This link or code has expired or was already used. Ask for a new one.")
    return mismatch or _("The details you entered do not match our records.")


# --- staff ---------------------------------------------------------------------------------


@bp.route("/staff/login", methods=["GET", "POST"])
@login_limit
def staff_login():
    form = StaffLoginForm()
    if form.validate_on_submit():
        try:
            staff = auth.check_staff_password(
                db.session(), form.email.data, form.password.data, clock.now(), policy()
            )
        except auth.SignInError as exc:
            flash(_refused(exc, _("The e-mail address or password is not right. Please try again.")), "error")
            return render_template("auth/staff_login.html", form=form), 401
        session["pending_staff"] = [staff.id, staff.auth_version, clock.now().timestamp()]
        if staff.totp_secret_enc:
            return redirect(url_for("auth.staff_totp", next=request.args.get("next")))
        if current_app.config["STAFF_TOTP_REQUIRED"]:
            return redirect(url_for("auth.staff_totp_setup", next=request.args.get("next")))
        auth.record_staff_sign_in(db.session(), staff, clock.now())
        return _finish_staff_login(staff)
    return render_template("auth/staff_login.html", form=form)


def _pending_staff() -> StaffUser:
    pending = session.get("pending_staff")
    if not pending:
        abort(redirect(url_for("auth.staff_login")))
    staff_id, version, started = pending
    staff = db.session().get(StaffUser, staff_id)
    expired = clock.now().timestamp() - started > PENDING_MINUTES * 60
    if staff is None or staff.auth_version != version or expired:
        session.pop("pending_staff", None)
        abort(redirect(url_for("auth.staff_login")))
    return staff


def _finish_staff_login(staff: StaffUser):
    session.pop("pending_staff", None)
    session.pop("totp_setup_secret", None)
    if staff.must_change_password:
        # Both factors passed, but an admin asked for a new password (new account, reset): no
        # session until it is chosen.
        session["password_change"] = [staff.id, staff.auth_version, clock.now().timestamp()]
        return redirect(url_for("auth.staff_new_password", next=request.args.get("next")))
    session.pop("password_change", None)
    session.permanent = True
    session[STAFF_SEEN] = clock.now().timestamp()  # the idle timeout counts from here
    device = devices.open_session(db.session(), now=clock.now(), user_agent=request.user_agent.string,
                                  staff_id=staff.id)
    login_user(staff_principal(staff, device), remember=False)
    return redirect(_safe_next(url_for("staff.home")))


@bp.route("/staff/login/code", methods=["GET", "POST"])
@login_limit
def staff_totp():
    staff = _pending_staff()
    form = TotpForm()
    if form.validate_on_submit():
        try:
            auth.check_staff_totp(db.session(), staff, form.code.data, clock.now(), policy(), _cipher())
        except auth.SignInError as exc:
            flash(_refused(exc), "error")
            return render_template("auth/staff_totp.html", form=form), 401
        return _finish_staff_login(staff)
    return render_template("auth/staff_totp.html", form=form)


@bp.route("/staff/login/setup-code", methods=["GET", "POST"])
@login_limit
def staff_totp_setup():
    staff = _pending_staff()
    if staff.totp_secret_enc:
        return redirect(url_for("auth.staff_totp"))
    secret = session.setdefault("totp_setup_secret", auth.new_totp_secret())
    form = TotpForm()
    status = 200
    if form.validate_on_submit():
        try:
            auth.check_staff_totp(
                db.session(), staff, form.code.data, clock.now(), policy(), _cipher(), secret=secret
            )
        except auth.SignInError as exc:
            flash(_refused(exc), "error")
            status = 401
        else:
            return _finish_staff_login(staff)
    import segno  # QR codes: ~3.7 MiB a worker holds only once a QR code is drawn (issue 15)

    uri = auth.pyotp.TOTP(secret).provisioning_uri(name=staff.email, issuer_name="Hetrombopag diary")
    qr_svg = segno.make(uri, error="m").svg_inline(scale=5, title=_("Scan with your authenticator app"))
    return render_template("auth/staff_totp_setup.html", form=form, secret=secret, qr_svg=qr_svg), status


@bp.route("/staff/login/new-password", methods=["GET", "POST"])
@login_limit
def staff_new_password():
    """A password change required by an admin, after both factors and before any session."""
    from diary.services import administration

    pending = session.get("password_change")
    staff = db.session().get(StaffUser, pending[0]) if pending else None
    if (staff is None or staff.auth_version != pending[1] or not staff.is_active
            or clock.now().timestamp() - pending[2] > PENDING_MINUTES * 60):
        session.pop("password_change", None)
        return redirect(url_for("auth.staff_login"))
    form = NewPasswordForm()
    if form.validate_on_submit():
        try:
            administration.change_own_password(db.session(), staff, new_password=form.password.data,
                                               now=clock.now())
        except administration.AdminError:
            form.password.errors = [_("Choose a password different from the one you were given.")]
            return render_template("auth/staff_new_password.html", form=form), 400
        flash(_("Your new password is set."), "success")
        return _finish_staff_login(staff)
    return render_template("auth/staff_new_password.html", form=form)


def _end_this_device() -> None:
    device = getattr(current_user, "device", None)
    if device:
        devices.end(db.session(), device, clock.now())


@bp.post("/staff/logout")
def staff_logout():
    _end_this_device()
    # Clear first: logout_user() leaves the flag that makes Flask-Login delete the remember cookie.
    session.clear()
    logout_user()
    return redirect(url_for("auth.staff_login"))


# --- participants --------------------------------------------------------------------------


def _login_participant(participant) -> None:
    from diary.auth import ParticipantPrincipal

    session.pop("lang", None)
    # A long-lived session keeps the CSRF token of a page left open all morning valid.
    session.permanent = True
    device = devices.open_session(db.session(), now=clock.now(), user_agent=request.user_agent.string,
                                  participant_id=participant.id)
    # Remember-me: a participant stays signed in on their own phone through their courses.
    login_user(ParticipantPrincipal(devices.SignedInParticipant.of(participant), device), remember=True)


@bp.route("/login", methods=["GET", "POST"])
@login_limit
def participant_login():
    if current_user.is_authenticated and current_user.kind == "participant":
        return redirect(url_for("patient.today"))
    form = ParticipantLoginForm()
    if form.validate_on_submit():
        try:
            participant = auth.check_pin(
                db.session(), form.phone.data, form.pin.data, clock.now(), policy(), _cipher()
            )
        except auth.SignInError as exc:
            flash(_refused(exc, _("The phone number or PIN is not right. Please try again.")), "error")
            return render_template("auth/participant_login.html", form=form), 401
        _login_participant(participant)
        return redirect(_safe_next(url_for("patient.today")))
    return render_template("auth/participant_login.html", form=form)


@keep_typed("auth.participant_login")
def _login_expired(message: str):
    """A CSRF refusal on the sign-in page (left open too long): the phone number stays, never the PIN."""
    flash(message, "error")
    return render_template("auth/participant_login.html", form=ParticipantLoginForm()), 400


@bp.route("/activate/<token>", methods=["GET", "POST"])
@login_limit
def activate(token: str):
    try:
        auth.find_activation(db.session(), token, clock.now())
    except auth.SignInError as exc:
        return render_template("auth/activation_expired.html", message=_refusal(exc)), 410
    form = ChoosePinForm()
    if form.validate_on_submit():
        try:
            participant = auth.activate(db.session(), token, form.pin.data, clock.now())
        except auth.SignInError as exc:
            return render_template("auth/activation_expired.html", message=_refused(exc)), 410
        _login_participant(participant)
        flash(_("Your PIN is set. You will stay signed in on this phone."), "success")
        return redirect(url_for("patient.today"))
    return render_template("auth/activate.html", form=form)


@keep_typed("auth.forgot_pin")
def _forgot_pin_expired(message: str):
    flash(message, "error")
    return render_template("auth/forgot_pin.html", form=ForgotPinForm()), 400


@bp.route("/pin/forgot", methods=["GET", "POST"])
@login_limit
def forgot_pin():
    form = ForgotPinForm()
    if form.validate_on_submit():
        started = time.monotonic()
        s, now = db.session(), clock.now()
        issued = auth.issue_pin_reset(s, form.phone.data, now, policy(), _cipher(), reset_limits())
        if issued:
            participant, code = issued.participant, issued.code
            site = s.get(Site, participant.site_id)
            # Keyed by the code, not the second: a second request in the same second replaces
            # the first code, so its SMS must not be dropped as a duplicate of the first.
            # The dispatcher sends it, as every SMS: one send path, retried without doubling,
            # and the answer's timing does not depend on the SMS provider.
            outbox.enqueue(
                s, _cipher(), dedupe_key=f"pin_reset:{participant.id}:{issued.access_code_id}",
                kind="pin_reset", site_id=site.id, participant_id=participant.id,
                to=_cipher().decrypt(participant.phone_enc),
                body=_pin_code_text(participant.language, code), not_before=now,
                expires_at=now + timedelta(minutes=policy().pin_reset_minutes),
            )
        # Committed before the deliberate wait: a sleep must not hold the participant's row and the
        # site-wide SMS budget, behind which every other "forgot PIN" request queues.
        db.commit_now()
        # The same answer, after the same time, whether or not the number is enrolled or a
        # limit was reached: a stranger learns nothing.
        _answer_no_sooner_than(started + current_app.config["FORGOT_PIN_RESPONSE_SECONDS"])
        flash(_("If this number is enrolled in the study, a text message with a code is on its way."), "info")
        return redirect(url_for("auth.reset_pin"))
    return render_template("auth/forgot_pin.html", form=form)


def _answer_no_sooner_than(deadline: float) -> None:
    remaining = deadline - time.monotonic()
    if remaining > 0:
        time.sleep(remaining)


def _pin_code_text(language: str, code: str) -> str:
    from diary.messaging import texts

    return texts.pin_code(language, code=code, minutes=policy().pin_reset_minutes)


@bp.route("/pin/reset", methods=["GET", "POST"])
@login_limit
def reset_pin():
    form = ResetPinForm()
    if form.validate_on_submit():
        try:
            participant = auth.reset_pin(
                db.session(), form.phone.data, form.code.data, form.pin.data, clock.now(),
                policy(), _cipher(),
            )
        except auth.SignInError as exc:
            flash(_refused(exc, _("The phone number or code is not right. Please try again.")), "error")
            return render_template("auth/reset_pin.html", form=form), 401
        _login_participant(participant)
        flash(_("Your new PIN is set."), "success")
        return redirect(url_for("patient.today"))
    return render_template("auth/reset_pin.html", form=form)


@bp.post("/logout")
def participant_logout():
    _end_this_device()
    # Clear first: logout_user() leaves the flag that makes Flask-Login delete the remember cookie.
    session.clear()
    logout_user()
    response = redirect(url_for("auth.participant_login"))
    # A shared or handed-on phone must not show this person's diary from the offline cache
    # (service worker pages, IndexedDB queue): the browser wipes both.
    response.headers["Clear-Site-Data"] = '"cache", "storage"'
    return response


@bp.post("/language")
def choose_language():
    """Language for pages before sign-in; participants set theirs in Settings."""
    lang = request.form.get("lang")
    if lang in ("zh", "en"):
        session["lang"] = lang
    return redirect(_safe_next(url_for("auth.participant_login")))
