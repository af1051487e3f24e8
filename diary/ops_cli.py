"""Operations commands: backup, restore and data-key rotation (issue 14, items 7 and 8)."""

from __future__ import annotations

import sys

import click
from flask import current_app
from flask.cli import with_appcontext
from sqlmodel import Session, func, select

from diary import audit, clock, db
from diary.models import AuditEvent, Course, DoseLog, Participant

# Shown after a backup and a restore, so an operator can compare the two at a glance.
COUNTED = (("participants", Participant), ("courses", Course), ("dose logs", DoseLog),
           ("audit events", AuditEvent))


def register(app) -> None:
    app.cli.add_command(backup_command)
    app.cli.add_command(restore_command)
    app.cli.add_command(rotate_key_command)


def _counts() -> str:
    with Session(db.engine()) as s:
        return ", ".join(f"{s.exec(select(func.count()).select_from(model)).one()} {label}"
                         for label, model in COUNTED)


@click.command("backup")
@with_appcontext
@click.argument("path", type=click.Path(dir_okay=False))
def backup_command(path: str) -> None:
    """Write a consistent copy of the database to PATH while the app runs (SQLite backup API, or
    pg_dump's custom format for PostgreSQL). Readable only with the same DATA_ENCRYPTION_KEY."""
    from diary.backup import BackupError, backup

    try:
        backup(db.engine(), path)
    except BackupError as exc:
        raise click.ClickException(f"Backup NOT written: {exc}") from None
    click.echo(f"Backup written to {path}. The live database now has {_counts()}.")


@click.command("restore")
@with_appcontext
@click.argument("path", type=click.Path(exists=True, dir_okay=False))
@click.option("--force", is_flag=True, help="Overwrite a database that holds data.")
def restore_command(path: str, force: bool) -> None:
    """Replace the database with the backup at PATH, refresh statistics (ANALYZE) and verify the
    audit trail. Refuses a database that holds data unless --force. Stop the app and scheduler first."""
    from diary.backup import BackupError, restore

    try:
        restore(db.engine(), path, force=force)
    except BackupError as exc:
        raise click.ClickException(f"Restore refused: {exc}") from None
    with Session(db.engine()) as s:
        report = audit.verify(s)
    click.echo(f"Restored from {path}: {_counts()}.")
    if not report.ok:
        click.echo(f"Audit trail does NOT verify: {report.problem or report.finding} "
                   "(is AUDIT_KEY / DATA_ENCRYPTION_KEY the one the backup was made with?)", err=True)
        sys.exit(1)
    click.echo(f"Audit trail intact: {report.checked} events.")


@click.command("rotate-key")
@with_appcontext
@click.option("--batch", default=200, show_default=True, type=click.IntRange(min=1),
              help="Rows per transaction.")
def rotate_key_command(batch: int) -> None:
    """Re-encrypt phone numbers, emergency-contact phones, outbox recipients and TOTP secrets (and
    re-hash phone look-ups) under DATA_ENCRYPTION_KEY. DATA_ENCRYPTION_OLD_KEYS keep working until
    this reports nothing left; safe to interrupt and run again."""
    from diary.services.keys import RotationError, rotate

    if not current_app.config.get("AUDIT_KEY"):
        # Derived from the data key, the audit key would change with it and the trail would stop
        # verifying once the old key is dropped: pin it first.
        raise click.ClickException(
            "AUDIT_KEY is not set, so the audit trail is keyed by the data key. Set AUDIT_KEY first "
            "(keep the current trail verifiable: AUDIT_KEY=hex:<key> as printed by "
            "`flask --app wsgi audit derived-key`), then run rotate-key again.")
    cipher = current_app.extensions["diary.cipher"]
    try:
        report = rotate(db.engine(), cipher, now=clock.now(), batch=batch, progress=click.echo)
    except RotationError as exc:
        raise click.ClickException(f"Rotation stopped: {exc}") from None
    if report.remaining:
        click.echo(f"{report.remaining} value(s) still under an old key (changed while rotating): "
                   "run rotate-key again.", err=True)
        sys.exit(1)
    click.echo("Everything is under the current key: DATA_ENCRYPTION_OLD_KEYS can now be removed.")


@click.command("derived-key")
@with_appcontext
def audit_derived_key() -> None:
    """Print the audit trail's key as AUDIT_KEY=hex:… (to pin it before rotating the data key).
    It is a secret: put it straight into the secret store."""
    key = current_app.extensions["diary.audit_key"]
    click.echo(f"AUDIT_KEY=hex:{key.hex()}")
