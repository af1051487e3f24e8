"""Flask CLI commands (listed in the README)."""

from __future__ import annotations

import sys
from datetime import datetime

import click
from flask import Flask, current_app
from flask.cli import AppGroup, with_appcontext
from sqlmodel import Session, select

from diary import audit, clock, db
from diary.models import ROLES, Site, StaffUser


def register(app: Flask) -> None:
    # Commands carry @with_appcontext themselves: `flask` pushes a context for them, but
    # app.test_cli_runner() and any other caller of app.cli do not.
    app.cli.add_command(migrate_command)
    app.cli.add_command(create_site)
    app.cli.add_command(create_staff)
    app.cli.add_command(deactivate_staff)
    app.cli.add_command(enroll_command)
    app.cli.add_command(demo_command)
    app.cli.add_command(scheduler)
    app.cli.add_command(audit_group)
    app.cli.add_command(export_group)
    from diary import ops_cli

    ops_cli.register(app)
    audit_group.add_command(ops_cli.audit_derived_key)
    app.cli.add_command(sms_group)


@click.command("migrate")
@with_appcontext
def migrate_command() -> None:
    """Bring the database schema up to date (alembic upgrade head)."""
    # Alembic (with Mako and Pygments) is imported by this command only: every web worker
    # registers the commands, and would otherwise hold ~10 MiB it never uses (issue 15).
    from diary import migrate

    migrate.upgrade(db.engine())
    click.echo("Database is up to date.")


@click.command("create-site")
@with_appcontext
@click.option("--code", required=True)
@click.option("--name", required=True)
@click.option("--phone", required=True, help="The number participants call.")
@click.option("--on-call-phone", help="Receives danger-symptom alerts.")
@click.option("--timezone", default=None, help="IANA zone; default DIARY_TIMEZONE.")
@click.option("--emergency-phone", default="120", show_default=True,
              help="Local emergency number, shown first for stroke, chest-pain and breathing signs.")
@click.option("--plt-lln", type=click.FloatRange(min=1, max=1500), default=None,
              help="The laboratory's platelet lower limit of normal (×10⁹/L) for CTCAE grade 1; "
                   "default: study.toml plt_lln (125, WS/T 405-2012).")
@click.option("--quiet-start", default=None, metavar="HH:MM",
              help="Start of the site's quiet hours (no participant SMS), local time; with --quiet-end. "
                   "Default: study.toml [reminders] quiet_start–quiet_end. The same time twice: none.")
@click.option("--quiet-end", default=None, metavar="HH:MM", help="End of the site's quiet hours.")
def create_site(code, name, phone, on_call_phone, timezone, emergency_phone, plt_lln, quiet_start,
                quiet_end) -> None:
    """Add a study site."""
    from diary.services import administration as admin

    with Session(db.engine()) as s:
        try:
            site = admin.create_site(s, code=code, name=name, phone=phone, on_call_phone=on_call_phone,
                                     timezone=timezone or current_app.config["DIARY_TIMEZONE"],
                                     emergency_phone=emergency_phone, plt_lln=plt_lln, quiet_start=quiet_start,
                                     quiet_end=quiet_end, actor="cli", now=clock.now())
        except admin.AdminError as exc:
            raise click.UsageError(f"Not created: {exc.field} is {exc.code}.") from None
        s.commit()
        click.echo(f"Site {site.code} created.")


@click.command("create-staff")
@with_appcontext
@click.option("--email", required=True)
@click.option("--name", required=True)
@click.option("--role", type=click.Choice(ROLES), required=True)
@click.option("--site", "site_codes", multiple=True, help="Site code; repeat for several.")
@click.password_option(help="Prompted for when not given.")
def create_staff(email, name, role, site_codes, password) -> None:
    """Add a staff account (password hashed with argon2; TOTP is set up at first sign-in)."""
    from diary.services import administration as admin

    if len(password) < admin.MIN_PASSWORD:
        raise click.UsageError("The password must be at least 12 characters.")
    with Session(db.engine()) as s:
        site_ids = set()
        for code in site_codes:
            site = s.exec(select(Site).where(Site.code == code.upper())).first()
            if site is None:
                raise click.UsageError(f"No site with code {code!r}.")
            site_ids.add(site.id)
        try:
            # The operator chose this password: no change is forced at first sign-in.
            staff = admin.create_staff(s, email=email, name=name, role=role, site_ids=site_ids, password=password,
                                       actor="cli", now=clock.now(), must_change_password=False)
        except admin.AdminError as exc:
            if (exc.field, exc.code) == ("sites", "required"):
                raise click.UsageError("Nurses and investigators need at least one --site.") from None
            raise click.UsageError(f"Not created: {exc.field} is {exc.code}.") from None
        s.commit()
        click.echo(f"Staff account {staff.email} ({role}) created.")


@click.command("deactivate-staff")
@with_appcontext
@click.option("--email", required=True)
@click.option("--reason", required=True, help="Recorded in the audit trail.")
def deactivate_staff(email, reason) -> None:
    """Deactivate a staff account: it can no longer sign in, and every open session ends now."""
    from diary.services import administration as admin

    with Session(db.engine()) as s:
        staff = s.exec(select(StaffUser).where(StaffUser.email == email.strip().lower())).first()
        if staff is None:
            raise click.UsageError(f"No staff account {email!r}.")
        try:
            ended = admin.deactivate_staff(s, staff, reason=reason, actor="cli", actor_id=None, now=clock.now())
        except admin.AdminError as exc:
            raise click.UsageError(f"Not deactivated: {exc.field} is {exc.code}.") from None
        s.commit()
        click.echo(f"Staff account {staff.email} deactivated; {ended} open session(s) ended.")


@click.command("enroll")
@with_appcontext
@click.option("--site", "site_code", required=True)
@click.option("--study-number", required=True)
@click.option("--cohort", type=click.Choice(["primary", "secondary"]), required=True)
@click.option("--phone", required=True, help="Mobile number, E.164 or national form.")
@click.option("--language", type=click.Choice(["zh", "en"]), default="zh")
@click.option("--reminder-time", default="08:00")
@click.option("--staff-email", required=True, help="Who enrols (recorded in the audit trail).")
def enroll_command(site_code, study_number, cohort, phone, language, reminder_time, staff_email):
    """Enrol a participant and print their one-time activation link."""
    from diary.auth.services import issue_activation
    from diary.demo import activation_link, policy_from
    from diary.services.enrolment import EnrolmentError, enroll

    cipher = current_app.extensions["diary.cipher"]
    with Session(db.engine()) as s:
        site = s.exec(select(Site).where(Site.code == site_code.upper())).first()
        staff = s.exec(select(StaffUser).where(StaffUser.email == staff_email.lower())).first()
        if site is None or staff is None:
            raise click.UsageError("Unknown site or staff e-mail.")
        try:
            p = enroll(s, cipher, site_id=site.id, study_number=study_number, cohort=cohort,
                       phone=phone, staff_id=staff.id, now=clock.now(), language=language,
                       reminder_time=reminder_time, cfg=current_app.extensions["diary.study"])
        except EnrolmentError as exc:
            raise click.UsageError(f"Not enrolled: {exc.field} is {exc.code}.") from None
        # The app's clock, as the web tier uses, so the link expires by the same time it is checked by.
        token = issue_activation(s, p, staff.id, clock.now(), policy_from(current_app.config))
        s.commit()  # the participant and their link, together
        click.echo(f"Enrolled {p.study_number}. Activation link: {activation_link(token)}")


@click.command("demo")
@with_appcontext
def demo_command() -> None:
    """Seed demo data (sites, one account per role, participants in both cohorts) and print sign-ins."""
    from diary.demo import seed

    seed(current_app, echo=click.echo)
    db.refresh_statistics(db.engine(), force=True)


scheduler = AppGroup("scheduler", help="Reminders, flags, staff alerts and the SMS outbox (DESIGN §4).")


@scheduler.command("run")
def scheduler_run() -> None:
    """Run the scheduler process: every job each SCHEDULER_INTERVAL_SECONDS; SIGTERM finishes
    the current batch and exits. Run it in its own process, never inside web workers."""
    from diary import settle
    from diary.scheduling import run

    _gateway_or_exit()
    settle()
    # The real app object: the scheduler's worker threads have no application context.
    run(current_app._get_current_object())


def _gateway_or_exit() -> None:
    """Build the SMS gateway before any work: an incomplete provider setting (a credential, or a
    template id missing from SMS_TEMPLATES) stops the scheduler with a message naming it."""
    from diary.messaging.outbox import gateway

    try:
        with current_app.app_context():
            gateway()
    except ValueError as exc:
        raise click.ClickException(f"the SMS gateway cannot start:\n{exc}") from None


@scheduler.command("tick")
@click.option("--now", "now_text", default=None, help="ISO 8601 instant with offset.")
def scheduler_tick(now_text: str | None) -> None:
    """Run every job once at the instant --now (default: the current time): plan reminders,
    raise flags, queue alerts and the digest, dispatch the outbox, record a heartbeat."""
    from diary.scheduling import tick

    now = clock.now()
    if now_text:
        try:
            now = datetime.fromisoformat(now_text)
        except ValueError:
            raise click.BadParameter("not an ISO 8601 instant, e.g. 2026-12-01T09:00+08:00",
                                     param_hint="--now") from None
        if now.tzinfo is None:
            raise click.BadParameter("give an offset, e.g. 2026-12-01T09:00+08:00", param_hint="--now")
    _gateway_or_exit()
    for line in tick(current_app, now):
        click.echo(line)


audit_group = AppGroup("audit", help="The audit trail.")


@audit_group.command("verify")
def audit_verify() -> None:
    """Check every chain, every clinical row and the newest checkpoint; exits 1 naming what is wrong."""
    with Session(db.engine()) as s:
        report = audit.verify(s)
    if report.ok:
        anchored = "against the newest checkpoint" if report.anchored else "no checkpoint yet"
        click.echo(f"Audit trail intact: {report.checked} events ({anchored}).")
        return
    if report.first_broken_id is not None:
        click.echo(f"Audit trail BROKEN at event {report.first_broken_id}: {report.problem} "
                   f"({report.checked} events before it are intact).", err=True)
    else:
        click.echo(f"Audit trail BROKEN: {report.finding}.", err=True)
    sys.exit(1)


@audit_group.command("checkpoint")
def audit_checkpoint() -> None:
    """Append a signed checkpoint of every chain's head to AUDIT_ANCHOR_PATH."""
    from diary import audit_anchor

    with Session(db.engine()) as s:
        try:
            point = audit_anchor.checkpoint(s, clock.now())
        except audit_anchor.AnchorError as exc:
            click.echo(f"Checkpoint REFUSED: {exc}. Run `audit verify`.", err=True)
            sys.exit(1)
    click.echo(f"Checkpoint of {point['event_count']} events in {len(point['chains'])} chains "
               f"appended to {current_app.config['AUDIT_ANCHOR_PATH']}.")


export_group = AppGroup("export", help="Study exports.")


@export_group.command("odm")
@click.argument("path", type=click.Path(dir_okay=False, writable=True))
def export_odm(path: str) -> None:
    """Write every site's data as one CDISC ODM 1.3.2 XML file (streamed; pseudonymous)."""
    from diary.services.odm import write_odm

    with current_app.app_context(), Session(db.engine(), expire_on_commit=False) as s:
        now = clock.now()
        with open(path, "wb") as out:
            counts = write_odm(s, current_app.extensions["diary.study"], out, sites=None, actor="cli", now=now)
        s.commit()
    click.echo(f"ODM 1.3.2 export of {counts['participants']} participants written to {path}.")


sms_group = AppGroup("sms", help="SMS templates for the domestic providers (Tencent Cloud, Alibaba Cloud).")


@sms_group.command("templates")
@with_appcontext
@click.option("--provider", type=click.Choice(["tencent", "aliyun"]), required=True)
@click.option("--language", type=click.Choice(["zh", "en"]), default="zh", show_default=True)
def sms_templates(provider, language) -> None:
    """Print every SMS template in the provider's variable syntax, ready to file."""
    from diary.messaging.filing import filing_sheet

    click.echo(filing_sheet(provider, language, link=current_app.config.get("SMS_LINK_BASE_URL")))
