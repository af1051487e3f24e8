"""Settings from the environment: strict, and refusing to run production without its secrets."""

from __future__ import annotations

import argon2
import pytest

from diary import create_app
from diary.auth import services as auth_services
from diary.config import SettingsError, envbool, load_settings

PRODUCTION = {"DIARY_ENV": "production", "SECRET_KEY": "s" * 32, "DATA_ENCRYPTION_KEY": "d" * 32}


def _settings(tmp_path, **env):
    return load_settings(env, instance_path=str(tmp_path))


@pytest.mark.parametrize("missing", ["SECRET_KEY", "DATA_ENCRYPTION_KEY"])
def test_production_without_a_secret_refuses_to_start(monkeypatch, missing):
    for name, value in PRODUCTION.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv(missing)
    monkeypatch.delenv(f"{missing}_FILE", raising=False)
    with pytest.raises(SettingsError, match=missing):
        create_app()


def test_production_with_its_secrets_starts(monkeypatch, tmp_path):
    for name, value in PRODUCTION.items():
        monkeypatch.setenv(name, value)
    app = create_app({"DATABASE_URL": f"sqlite:///{tmp_path / 'x.sqlite3'}"})
    assert app.config["SECRET_KEY"] == PRODUCTION["SECRET_KEY"]
    app.extensions["diary.engine"].dispose()


def test_production_hashes_passwords_and_pins_at_argon2s_full_cost(monkeypatch, tmp_path):
    # Tests run with cheap argon2 parameters; a deployment must never inherit them.
    for name, value in PRODUCTION.items():
        monkeypatch.setenv(name, value)
    app = create_app({"DATABASE_URL": f"sqlite:///{tmp_path / 'x.sqlite3'}"})
    try:
        assert auth_services.hasher_parameters() == {"time_cost": 3, "memory_kib": 65536, "parallelism": 4}
        params = argon2.extract_parameters(auth_services.hash_secret("1234"))
        assert (params.time_cost, params.memory_cost, params.parallelism) == (3, 65536, 4)
    finally:
        app.extensions["diary.engine"].dispose()
        auth_services.configure_hasher(time_cost=1, memory_kib=8, parallelism=1)


def test_production_refuses_a_cheaper_password_hash(tmp_path):
    with pytest.raises(SettingsError, match="ARGON2"):
        _settings(tmp_path, **PRODUCTION, ARGON2_MEMORY_KIB="8")


def test_development_without_a_secret_key_starts_with_a_warning(tmp_path, caplog):
    settings = _settings(tmp_path)
    assert settings["SECRET_KEY"]
    assert "SECRET_KEY is not set" in caplog.text


def test_production_cookies_are_secure_by_default(tmp_path):
    settings = _settings(tmp_path, **PRODUCTION)
    assert settings["SESSION_COOKIE_SECURE"] and settings["REMEMBER_COOKIE_SECURE"]


def test_an_unknown_mode_is_refused(tmp_path):
    with pytest.raises(SettingsError, match="DIARY_ENV"):
        _settings(tmp_path, DIARY_ENV="prod")


@pytest.mark.parametrize("raw", ["yes", "no", "1", "0", "on", "TRUE", "ture"])
def test_envbool_accepts_only_true_or_false(raw):
    with pytest.raises(SettingsError, match="FLAG"):
        envbool({"FLAG": raw}, "FLAG", False)


@pytest.mark.parametrize(("raw", "value"), [("true", True), ("True", True), ("false", False), ("False", False)])
def test_envbool_reads_true_and_false(raw, value):
    assert envbool({"FLAG": raw}, "FLAG", not value) is value


def test_envbool_falls_back_to_the_default_when_unset():
    assert envbool({}, "FLAG", True) is True
    assert envbool({"FLAG": ""}, "FLAG", False) is False


def test_a_malformed_boolean_setting_stops_start_up(tmp_path):
    with pytest.raises(SettingsError, match="RATELIMIT_ENABLED"):
        _settings(tmp_path, RATELIMIT_ENABLED="yes")


def test_secret_key_file_is_read(tmp_path):
    secret = tmp_path / "secret_key"
    secret.write_text("from-a-file\n", encoding="utf-8")
    settings = _settings(tmp_path, DIARY_ENV="production", SECRET_KEY_FILE=str(secret),
                         DATA_ENCRYPTION_KEY="d" * 32)
    assert settings["SECRET_KEY"] == "from-a-file"


def test_the_variable_wins_over_the_file(tmp_path):
    secret = tmp_path / "secret_key"
    secret.write_text("from-a-file", encoding="utf-8")
    settings = _settings(tmp_path, SECRET_KEY="from-the-variable", SECRET_KEY_FILE=str(secret))
    assert settings["SECRET_KEY"] == "from-the-variable"


@pytest.mark.parametrize("zone", ["Mars/Olympus_Mons", "Asia/Shang hai", "../../etc/passwd"])
def test_a_bad_time_zone_is_refused(tmp_path, zone):
    with pytest.raises(SettingsError, match="DIARY_TIMEZONE"):
        _settings(tmp_path, DIARY_TIMEZONE=zone)


def test_the_default_time_zone_is_shanghai(tmp_path):
    assert _settings(tmp_path)["DIARY_TIMEZONE"] == "Asia/Shanghai"


def test_a_malformed_number_setting_is_refused(tmp_path):
    with pytest.raises(SettingsError, match="LOGIN_MAX_FAILURES"):
        _settings(tmp_path, LOGIN_MAX_FAILURES="five")


def test_an_unknown_sms_backend_is_refused(tmp_path):
    with pytest.raises(SettingsError, match="SMS_BACKEND"):
        _settings(tmp_path, SMS_BACKEND="carrier-pigeon")


def test_the_idle_timeout_comes_from_staff_idle_minutes(tmp_path):
    assert _settings(tmp_path, STAFF_IDLE_MINUTES="10")["STAFF_IDLE_TIMEOUT"].total_seconds() == 600


def test_the_default_database_is_a_sqlite_file_in_the_instance_folder(tmp_path):
    assert _settings(tmp_path)["DATABASE_URL"] == f"sqlite:///{tmp_path / 'diary.sqlite3'}"
