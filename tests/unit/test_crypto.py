"""Phone numbers at rest: encrypted, found by a keyed hash, never readable from a dump."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest
from sqlalchemy import select, text
from sqlalchemy.engine import make_url
from sqlmodel import SQLModel

from diary.crypto import DataCipher, InvalidPhone, normalize_phone

PHONE = "+8613800001111"
NATIONAL_DIGITS = "13800001111"


def _raw_bytes(app, backend) -> bytes:
    """What a copy of the database files holds: the SQLite file, or the PostgreSQL table's pages."""
    engine = app.extensions["diary.engine"]
    if backend == "sqlite":
        engine.dispose()  # let SQLite write everything out
        path = Path(make_url(app.config["DATABASE_URL"]).database)
        return b"".join(p.read_bytes() for p in (path, Path(f"{path}-wal")) if p.exists())
    with engine.connect() as conn:
        conn.execute(text("CHECKPOINT"))
        return bytes(conn.execute(text(
            "SELECT pg_read_binary_file(pg_relation_filepath('participant'))")).scalar_one())


def test_the_raw_database_does_not_contain_the_phone_number(app, world, backend):
    raw = _raw_bytes(app, backend)
    assert b"PA" in raw  # the study number is there: this really is the participant's row
    assert NATIONAL_DIGITS.encode() not in raw
    assert NATIONAL_DIGITS.encode("utf-16-le") not in raw


def test_no_table_holds_the_phone_number_in_clear(app, world):
    with app.extensions["diary.engine"].connect() as conn:
        dump = "\n".join(
            repr(row) for table in SQLModel.metadata.sorted_tables for row in conn.execute(select(table)))
    assert "'PA'" in dump
    assert NATIONAL_DIGITS not in dump


def test_the_stored_phone_decrypts_to_the_number(app, world):
    cipher = app.extensions["diary.cipher"]
    assert cipher.decrypt(world.participants["pa"].phone_enc) == PHONE


def test_the_lookup_hash_depends_on_the_key():
    assert DataCipher("key one").lookup_hash(PHONE) != DataCipher("key two").lookup_hash(PHONE)


def test_the_lookup_hash_is_not_a_plain_hash_of_the_number():
    digest = DataCipher("key one").lookup_hash(PHONE)
    plain = {hashlib.sha256(number.encode()).hexdigest() for number in (PHONE, NATIONAL_DIGITS)}
    assert digest not in plain


def test_the_same_key_finds_the_same_number_again():
    assert DataCipher("key one").lookup_hash(PHONE) == DataCipher("key one").lookup_hash(PHONE)


def test_encryption_is_not_deterministic():
    cipher = DataCipher("key one")
    assert cipher.encrypt(PHONE) != cipher.encrypt(PHONE)


def test_another_key_cannot_decrypt():
    from cryptography.fernet import InvalidToken

    with pytest.raises(InvalidToken):
        DataCipher("key two").decrypt(DataCipher("key one").encrypt(PHONE))


@pytest.mark.parametrize("typed", [PHONE, "138 0000 1111", "138-0000-1111", "+86 138 0000 1111", " 13800001111 "])
def test_numbers_are_normalised_to_e164(typed):
    assert normalize_phone(typed) == PHONE


@pytest.mark.parametrize("junk", ["", "   ", "hello", "12345", "+86 138", "1380000111122223333", "+999 1234567",
                                  "call me"])
def test_junk_is_not_a_phone_number(junk):
    with pytest.raises(InvalidPhone):
        normalize_phone(junk)
