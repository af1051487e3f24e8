"""Rotating DATA_ENCRYPTION_KEY (issue 14, item 8): rewrite every encrypted field and look-up hash
under the current key, in batches, while the app keeps running on old + new keys (MultiFernet).

Each row is rewritten by a compare-and-set UPDATE (`WHERE id = … AND <column> = <token read>`): a
row the app changed meanwhile (a corrected number, a re-enrolled TOTP) was written under the current
key already and is left alone. Rows already under the current key are skipped, so a run that was
interrupted, or a second run, only finishes what is left.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import Engine, update
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, select

from diary import audit
from diary.crypto import DataCipher
from diary.models import InboundMessage, Message, Participant, StaffUser


class RotationError(RuntimeError):
    """The rotation stopped; the message says why. What was committed before stays rotated."""


@dataclass(frozen=True)
class _Field:
    label: str
    model: type
    column: str
    hash_column: str | None = None  # a keyed look-up hash of the same clear value
    as_text: bool = False  # stored as str (TOTP secrets), not bytes


FIELDS = (
    _Field("participant phones", Participant, "phone_enc", "phone_hash"),
    _Field("emergency contact phones", Participant, "emergency_phone_enc"),
    _Field("TOTP secrets", StaffUser, "totp_secret_enc", as_text=True),
    _Field("outbox recipients", Message, "to_enc"),
    _Field("inbound senders", InboundMessage, "from_enc", "from_hash"),
)


@dataclass
class RotationReport:
    rewritten: dict[str, int] = field(default_factory=dict)
    changed_meanwhile: int = 0
    remaining: int = 0


def _needs(cipher: DataCipher, token, hashed: str | None, clear_hash: Callable[[], str]) -> bool:
    return not cipher.is_current(token) or (hashed is not None and hashed != clear_hash())


def rotate(engine: Engine, cipher: DataCipher, *, now: datetime, actor: str = "cli", batch: int = 200,
           progress: Callable[[str], None] = lambda _line: None) -> RotationReport:
    """Rewrite every field of FIELDS under the cipher's current key, one committed batch at a time."""
    report = RotationReport()
    for f in FIELDS:
        model, column = f.model, getattr(f.model, f.column)
        hash_column = getattr(f.model, f.hash_column) if f.hash_column else None
        done, last_id = 0, 0
        while True:
            with Session(engine) as s:
                wanted = [model.id, column] + ([hash_column] if hash_column is not None else [])
                rows = s.exec(select(*wanted).where(model.id > last_id, column.is_not(None))
                              .order_by(model.id).limit(batch)).all()
                if not rows:
                    break
                for row in rows:
                    row_id, token = row[0], row[1]
                    hashed = row[2] if hash_column is not None else None
                    clear = cipher.decrypt(token)
                    if not _needs(cipher, token, hashed, lambda c=clear: cipher.lookup_hash(c)):
                        continue
                    fresh = cipher.encrypt(clear)
                    values = {f.column: fresh.decode() if f.as_text else fresh}
                    if hash_column is not None:
                        values[f.hash_column] = cipher.lookup_hash(clear)
                    result = s.exec(update(model).where(model.id == row_id, column == token).values(values))
                    if result.rowcount == 1:
                        done += 1
                    else:
                        report.changed_meanwhile += 1
                last_id = rows[-1][0]
                try:
                    s.commit()
                except IntegrityError:
                    # Two rows with one clear value under different keys (a number enrolled twice
                    # while the rotation was pending): the database refuses, as it would any duplicate.
                    raise RotationError(f"two {f.label} are the same number (ids ≤ {last_id}); "
                                        "resolve the duplicate and run rotate-key again") from None
        report.rewritten[f.label] = done
        progress(f"{f.label}: {done} rewritten")
    report.remaining = remaining(engine, cipher)
    with Session(engine) as s:
        audit.record(s, actor=actor, action="data_key_rotated", entity="DataKey", at=now,
                     after={"rewritten": report.rewritten, "changed_meanwhile": report.changed_meanwhile,
                            "remaining": report.remaining})
        s.commit()
    return report


def remaining(engine: Engine, cipher: DataCipher, batch: int = 500) -> int:
    """How many encrypted values or look-up hashes are not yet under the current key."""
    left = 0
    with Session(engine) as s:
        for f in FIELDS:
            model, column = f.model, getattr(f.model, f.column)
            hash_column = getattr(f.model, f.hash_column) if f.hash_column else None
            wanted = [model.id, column] + ([hash_column] if hash_column is not None else [])
            for row in s.exec(select(*wanted).where(column.is_not(None)).execution_options(yield_per=batch)):
                hashed = row[2] if hash_column is not None else None
                if _needs(cipher, row[1], hashed, lambda t=row[1]: cipher.lookup_hash(cipher.decrypt(t))):
                    left += 1
    return left
