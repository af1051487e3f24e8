"""Rotating DATA_ENCRYPTION_KEY (issue 14, item 8): the old key keeps working until `rotate-key` has
rewritten everything, after which the new key alone reads every phone number and TOTP secret."""

from __future__ import annotations

import pyotp
import pytest
from cryptography.fernet import InvalidToken
from sqlmodel import Session, select

from diary import audit
from diary.models import Participant, StaffUser
from tests.conftest import PASSWORD, PIN, csrf_from, make_test_app

OLD = "test-data-key"  # the key the world fixture was built with
NEW = "a brand new data key"


@pytest.fixture
def pinned_audit_key(app):
    return "hex:" + app.extensions["diary.audit_key"].hex()


def _app(database_url, *, key, old=(), audit_key=None):
    return make_test_app(database_url, DATA_ENCRYPTION_KEY=key, DATA_ENCRYPTION_OLD_KEYS=tuple(old),
                         AUDIT_KEY=audit_key)


def _participant_signs_in(app, phone) -> int:
    client = app.test_client()
    token = csrf_from(client, "/login")
    return client.post("/login", data={"csrf_token": token, "phone": phone, "pin": PIN}).status_code


def _staff_signs_in(app, world, clock, key="nurse_a") -> int:
    client = app.test_client()
    token = csrf_from(client, "/staff/login")
    client.post("/staff/login", data={"csrf_token": token, "email": f"{key}@test.example", "password": PASSWORD})
    token = csrf_from(client, "/staff/login/code")
    code = pyotp.TOTP(world.totp[key]).at(clock.now)
    return client.post("/staff/login/code", data={"csrf_token": token, "code": code}).status_code


def test_the_old_key_keeps_working_while_the_new_key_is_introduced(database_url, world, clock, pinned_audit_key):
    during = _app(database_url, key=NEW, old=[OLD], audit_key=pinned_audit_key)
    during.extensions["diary.clock"] = clock
    assert _participant_signs_in(during, world.phones["pa"]) == 302
    assert _staff_signs_in(during, world, clock) == 302


def test_rotate_key_lets_the_old_key_go(database_url, world, clock, pinned_audit_key):
    during = _app(database_url, key=NEW, old=[OLD], audit_key=pinned_audit_key)
    result = during.test_cli_runner().invoke(args=["rotate-key", "--batch", "1"])
    assert result.exit_code == 0, result.output
    assert "participant phones: 2 rewritten" in result.output
    assert "TOTP secrets: 4 rewritten" in result.output

    after = _app(database_url, key=NEW, audit_key=pinned_audit_key)
    after.extensions["diary.clock"] = clock
    assert _participant_signs_in(after, world.phones["pb"]) == 302
    assert _staff_signs_in(after, world, clock, "investigator_a") == 302
    with Session(after.extensions["diary.engine"]) as s:
        cipher = after.extensions["diary.cipher"]
        phones = {cipher.decrypt(p.phone_enc) for p in s.exec(select(Participant))}
        assert phones == {world.phones["pa"], world.phones["pb"]}
        # Nothing the new key made can be read with the old one any more.
        old_only = _app(database_url, key=OLD).extensions["diary.cipher"]
        with pytest.raises(InvalidToken):
            old_only.decrypt(s.exec(select(StaffUser)).first().totp_secret_enc)
        assert audit.verify(s).ok


def test_rotate_key_is_safe_to_run_again(database_url, world, pinned_audit_key):
    during = _app(database_url, key=NEW, old=[OLD], audit_key=pinned_audit_key)
    runner = during.test_cli_runner()
    assert runner.invoke(args=["rotate-key"]).exit_code == 0
    again = runner.invoke(args=["rotate-key"])
    assert again.exit_code == 0, again.output
    assert "participant phones: 0 rewritten" in again.output
    assert "TOTP secrets: 0 rewritten" in again.output


def test_without_the_old_key_nothing_stored_before_is_readable(database_url, world):
    # What rotate-key protects against: dropping the old key before rotating.
    new_only = _app(database_url, key=NEW)
    assert _participant_signs_in(new_only, world.phones["pa"]) == 401


def test_rotate_key_refuses_while_the_audit_key_is_derived_from_the_data_key(database_url, world):
    during = _app(database_url, key=NEW, old=[OLD])
    result = during.test_cli_runner().invoke(args=["rotate-key"])
    assert result.exit_code == 1
    assert "AUDIT_KEY is not set" in result.output
    with Session(during.extensions["diary.engine"]) as s:
        assert not during.extensions["diary.cipher"].is_current(s.exec(select(Participant)).first().phone_enc)


def test_the_derived_audit_key_pinned_as_hex_keeps_the_trail_verifiable(database_url, world, runner):
    printed = runner.invoke(args=["audit", "derived-key"]).output.strip()
    assert printed.startswith("AUDIT_KEY=hex:")
    pinned = _app(database_url, key=NEW, audit_key=printed.removeprefix("AUDIT_KEY="))
    result = pinned.test_cli_runner().invoke(args=["audit", "verify"])
    assert result.exit_code == 0, result.output


def test_old_keys_come_from_a_comma_list_or_a_file(tmp_path):
    from diary.config import load_settings

    listed = load_settings({"DATA_ENCRYPTION_OLD_KEYS": "k2, k1"}, instance_path=str(tmp_path))
    assert listed["DATA_ENCRYPTION_OLD_KEYS"] == ("k2", "k1")
    (tmp_path / "old").write_text("k2\nk1\n")
    filed = load_settings({"DATA_ENCRYPTION_OLD_KEYS_FILE": str(tmp_path / "old")}, instance_path=str(tmp_path))
    assert filed["DATA_ENCRYPTION_OLD_KEYS"] == ("k2", "k1")
