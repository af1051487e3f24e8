"""Settings from the environment. Every setting is listed in the README's configuration table."""

from __future__ import annotations

import logging
import os
import zoneinfo
from collections.abc import Mapping
from datetime import timedelta
from pathlib import Path

import argon2

from diary.messaging.gateway import backends
from diary.messaging.texts import LINK_MAX_LENGTH

log = logging.getLogger(__name__)

_DEV_SECRET = "dev-only-secret-do-not-use-in-production"  # noqa: S105 - refused in production


class SettingsError(RuntimeError):
    """A setting is missing or malformed; the message names it."""


def envbool(env: Mapping[str, str], name: str, default: bool) -> bool:
    # Strict on purpose (as healthchecks does): "yes", "1" or a typo must not silently mean False.
    raw = env.get(name)
    if raw is None or raw == "":
        return default
    if raw in ("True", "true"):
        return True
    if raw in ("False", "false"):
        return False
    raise SettingsError(f"{name} must be true or false, not {raw!r}")


def envint(env: Mapping[str, str], name: str, default: int) -> int:
    raw = env.get(name)
    if raw is None or raw == "":
        return default
    try:
        return int(raw)
    except ValueError:
        raise SettingsError(f"{name} must be a whole number, not {raw!r}") from None


def envfloat(env: Mapping[str, str], name: str, default: float) -> float:
    raw = env.get(name)
    if raw is None or raw == "":
        return default
    try:
        return float(raw)
    except ValueError:
        raise SettingsError(f"{name} must be a number, not {raw!r}") from None


def _hhmm(env: Mapping[str, str], name: str, default: str) -> str:
    raw = env.get(name) or default
    try:
        hours, minutes = raw.split(":")
        if len(raw) != 5 or not (0 <= int(hours) < 24 and 0 <= int(minutes) < 60):
            raise ValueError
    except ValueError:
        raise SettingsError(f"{name} must be a local time HH:MM, not {raw!r}") from None
    return raw


def envsecret(env: Mapping[str, str], name: str) -> str | None:
    """A secret from NAME, or from the file named by NAME_FILE (Docker/K8s secrets)."""
    if env.get(name):
        return env[name]
    path = env.get(f"{name}_FILE")
    if path:
        return Path(path).read_text(encoding="utf-8").strip()
    return None


def _key_list(raw: str | None) -> tuple[str, ...]:
    if not raw:
        return ()
    return tuple(k.strip() for k in raw.replace("\n", ",").split(",") if k.strip())


def load_settings(env: Mapping[str, str] | None = None, *, instance_path: str) -> dict:
    """Build the Flask config mapping from environment variables."""
    env = os.environ if env is None else env
    mode = env.get("DIARY_ENV", "development")
    if mode not in ("development", "production"):
        raise SettingsError(f"DIARY_ENV must be development or production, not {mode!r}")
    production = mode == "production"

    secret = envsecret(env, "SECRET_KEY")
    data_key = envsecret(env, "DATA_ENCRYPTION_KEY")
    if production and not secret:
        raise SettingsError("SECRET_KEY is required when DIARY_ENV=production")
    if production and not data_key:
        raise SettingsError("DATA_ENCRYPTION_KEY is required when DIARY_ENV=production")
    if not secret:
        log.warning(
            "\n%s\n  SECRET_KEY is not set: using the DEVELOPMENT key. Never run real participants"
            " like this.\n%s", "!" * 78, "!" * 78,
        )
        secret = _DEV_SECRET

    tz = env.get("DIARY_TIMEZONE", "Asia/Shanghai")
    try:
        zoneinfo.ZoneInfo(tz)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        raise SettingsError(f"DIARY_TIMEZONE {tz!r} is not an IANA time zone") from None

    sms_backend = env.get("SMS_BACKEND") or "console"
    try:
        sms_backend = ",".join(backends(sms_backend))
    except ValueError as exc:
        raise SettingsError(str(exc)) from None

    idle = envint(env, "STAFF_IDLE_MINUTES", 30)
    remember_days = envint(env, "PARTICIPANT_REMEMBER_DAYS", 180)
    default_db = "sqlite:///" + str(Path(instance_path) / "diary.sqlite3")
    return {
        "DIARY_ENV": mode,
        "SECRET_KEY": secret,
        "DATA_ENCRYPTION_KEY": data_key or secret,
        # Keys being rotated out (issue 14, item 8): they still decrypt and match look-ups until
        # `flask rotate-key` has rewritten everything under DATA_ENCRYPTION_KEY. Comma- or
        # newline-separated; newest first.
        "DATA_ENCRYPTION_OLD_KEYS": _key_list(envsecret(env, "DATA_ENCRYPTION_OLD_KEYS")),
        # The audit chains' HMAC key (never stored in the database); default: derived from
        # DATA_ENCRYPTION_KEY under its own label (diary/audit.py).
        "AUDIT_KEY": envsecret(env, "AUDIT_KEY"),
        # Signed checkpoints of the audit chains' heads, appended by the scheduler (append-only file).
        "AUDIT_ANCHOR_PATH": env.get("AUDIT_ANCHOR_PATH") or str(Path(instance_path) / "audit-anchors.jsonl"),
        "DATABASE_URL": env.get("DATABASE_URL", default_db),
        "DIARY_TIMEZONE": tz,
        "STUDY_CONFIG": env.get("STUDY_CONFIG") or None,
        # The screening checklist (default: the packaged diary/screening.toml).
        "SCREENING_CONFIG": env.get("SCREENING_CONFIG") or None,
        # Drug accountability tolerance, AE terms and SAE rules (default: the packaged diary/records.toml).
        "RECORDS_CONFIG": env.get("RECORDS_CONFIG") or None,
        "SMS_BACKEND": sms_backend,
        "TWILIO_ACCOUNT_SID": env.get("TWILIO_ACCOUNT_SID"),
        "TWILIO_AUTH_TOKEN": envsecret(env, "TWILIO_AUTH_TOKEN"),
        "TWILIO_FROM": env.get("TWILIO_FROM"),
        "TWILIO_MESSAGING_SERVICE_SID": env.get("TWILIO_MESSAGING_SERVICE_SID"),
        "TWILIO_API_BASE_URL": env.get("TWILIO_API_BASE_URL"),
        "TWILIO_TIMEOUT": envint(env, "TWILIO_TIMEOUT", 10),
        **_domestic_sms_settings(env),
        "PUBLIC_BASE_URL": (env.get("PUBLIC_BASE_URL") or "").rstrip("/") or None,
        "RATELIMIT_STORAGE_URI": env.get("RATELIMIT_STORAGE_URI", "memory://"),
        "RATELIMIT_ENABLED": envbool(env, "RATELIMIT_ENABLED", True),
        "LOGIN_RATE_LIMIT": env.get("LOGIN_RATE_LIMIT", "10 per minute; 50 per hour"),
        "LOGIN_MAX_FAILURES": envint(env, "LOGIN_MAX_FAILURES", 5),
        "LOGIN_LOCK_MINUTES": envint(env, "LOGIN_LOCK_MINUTES", 15),
        "STAFF_TOTP_REQUIRED": envbool(env, "STAFF_TOTP_REQUIRED", True),
        "ACTIVATION_HOURS": envint(env, "ACTIVATION_HOURS", 72),
        "PIN_RESET_MINUTES": envint(env, "PIN_RESET_MINUTES", 10),
        # "Forgot PIN" texts a code to whoever asks: limits per phone and site-wide (issue 11).
        "PIN_RESET_PER_HOUR": envint(env, "PIN_RESET_PER_HOUR", 3),
        "PIN_RESET_PER_DAY": envint(env, "PIN_RESET_PER_DAY", 10),
        "ANONYMOUS_SMS_PER_HOUR": envint(env, "ANONYMOUS_SMS_PER_HOUR", 60),
        # Every "forgot PIN" answer takes at least this long, so timing tells nothing.
        "FORGOT_PIN_RESPONSE_SECONDS": envfloat(env, "FORGOT_PIN_RESPONSE_SECONDS", 0.5),
        # Participants stay signed in on their own phone through their courses (DESIGN §1);
        # staff sessions end after inactivity (enforced in diary.auth, not by the cookie).
        "PERMANENT_SESSION_LIFETIME": timedelta(days=remember_days),
        "REMEMBER_COOKIE_DURATION": timedelta(days=remember_days),
        "STAFF_IDLE_TIMEOUT": timedelta(minutes=idle),
        "SESSION_COOKIE_SECURE": envbool(env, "SESSION_COOKIE_SECURE", production),
        "REMEMBER_COOKIE_SECURE": envbool(env, "SESSION_COOKIE_SECURE", production),
        "SESSION_COOKIE_HTTPONLY": True,
        "REMEMBER_COOKIE_HTTPONLY": True,
        "SESSION_COOKIE_SAMESITE": "Lax",
        "REMEMBER_COOKIE_SAMESITE": "Lax",
        "WTF_CSRF_TIME_LIMIT": None,  # a participant's form may stay open all morning
        "BABEL_DEFAULT_LOCALE": "zh",
        # One catalogue per area, merged by Flask-Babel, so areas can be translated independently.
        # Only areas that have a catalogue: Flask-Babel takes plural() from the last directory it
        # loads, and a missing one would reset Chinese plurals to English ("2 tablets").
        "BABEL_TRANSLATION_DIRECTORIES": ";".join(
            f"translations/{area}" for area in ("core", "patient", "staff", "records", "messaging")
            if (Path(__file__).parent / "translations" / area / "zh" / "LC_MESSAGES").is_dir()
        ),
        "BABEL_DEFAULT_TIMEZONE": tz,
        "PROXY_FIX": envbool(env, "PROXY_FIX", False),
        **_operations_settings(env, production),
        **_argon2_settings(env),
        **_scheduler_settings(env),
    }


def _domestic_sms_settings(env: Mapping[str, str]) -> dict:
    """Tencent Cloud SMS and Alibaba Cloud SMS (issue 13); credentials and signatures may come from *_FILE."""
    callback_secret = envsecret(env, "SMS_CALLBACK_SECRET")
    if callback_secret is not None and len(callback_secret) < 32:
        raise SettingsError("SMS_CALLBACK_SECRET must be a long random string (at least 32 characters)")
    link = (env.get("SMS_LINK_BASE_URL") or "").rstrip("/") or None
    if link and not link.startswith("https://"):
        raise SettingsError(f"SMS_LINK_BASE_URL must be an https:// URL on an ICP-filed domain, not {link!r}")
    if link and len(link) > LINK_MAX_LENGTH:
        raise SettingsError(f"SMS_LINK_BASE_URL may have at most {LINK_MAX_LENGTH} characters (it is part of "
                            f"a one-SMS text), not {len(link)}")
    return {
        # A TOML file mapping each template key and language to the provider's approved id.
        "SMS_TEMPLATES": env.get("SMS_TEMPLATES") or None,
        "SMS_LINK_BASE_URL": link,
        # Domestic providers' callbacks are not signed: this secret is part of their URL.
        "SMS_CALLBACK_SECRET": callback_secret,
        "SMS_CALLBACK_ALLOWED_IPS": env.get("SMS_CALLBACK_ALLOWED_IPS") or None,
        "SMS_PROVIDER_TIMEOUT": envint(env, "SMS_PROVIDER_TIMEOUT", 10),
        "TENCENT_SECRET_ID": envsecret(env, "TENCENT_SECRET_ID"),
        "TENCENT_SECRET_KEY": envsecret(env, "TENCENT_SECRET_KEY"),
        "TENCENT_SMS_SDK_APP_ID": envsecret(env, "TENCENT_SMS_SDK_APP_ID"),
        "TENCENT_SMS_SIGN_NAME": envsecret(env, "TENCENT_SMS_SIGN_NAME"),
        "TENCENT_SMS_REGION": env.get("TENCENT_SMS_REGION") or "ap-guangzhou",
        "TENCENT_SMS_ENDPOINT": env.get("TENCENT_SMS_ENDPOINT") or None,
        # Tencent lists a message for reconciliation only once its receipt is in: until then an
        # uncertain send waits instead of being resent.
        "TENCENT_SMS_RECEIPT_WAIT_SECONDS": envint(env, "TENCENT_SMS_RECEIPT_WAIT_SECONDS", 600),
        "ALIYUN_ACCESS_KEY_ID": envsecret(env, "ALIYUN_ACCESS_KEY_ID"),
        "ALIYUN_ACCESS_KEY_SECRET": envsecret(env, "ALIYUN_ACCESS_KEY_SECRET"),
        "ALIYUN_SMS_SIGN_NAME": envsecret(env, "ALIYUN_SMS_SIGN_NAME"),
        "ALIYUN_SMS_ENDPOINT": env.get("ALIYUN_SMS_ENDPOINT") or None,
    }


def _argon2_settings(env: Mapping[str, str]) -> dict:
    """Password/PIN hashing cost. The defaults are argon2-cffi's (RFC 9106's low-memory profile:
    3 passes over 64 MiB, 4 lanes); only tests lower them, to save seconds per sign-in."""
    defaults = argon2.profiles.RFC_9106_LOW_MEMORY
    settings = {
        "ARGON2_TIME_COST": envint(env, "ARGON2_TIME_COST", defaults.time_cost),
        "ARGON2_MEMORY_KIB": envint(env, "ARGON2_MEMORY_KIB", defaults.memory_cost),
        "ARGON2_PARALLELISM": envint(env, "ARGON2_PARALLELISM", defaults.parallelism),
    }
    if env.get("DIARY_ENV") == "production" and (
        settings["ARGON2_TIME_COST"] < defaults.time_cost or settings["ARGON2_MEMORY_KIB"] < defaults.memory_cost
    ):
        raise SettingsError("ARGON2_TIME_COST and ARGON2_MEMORY_KIB may not go below the defaults in production")
    return settings


def _scheduler_settings(env: Mapping[str, str]) -> dict:
    """Reminders, outbox and scheduler (issue 5)."""
    language = env.get("STAFF_SMS_LANGUAGE", "zh")
    if language not in ("zh", "en"):
        raise SettingsError(f"STAFF_SMS_LANGUAGE must be zh or en, not {language!r}")
    rate = envfloat(env, "SMS_RATE_PER_SECOND", 1.0)
    if rate < 0:
        raise SettingsError("SMS_RATE_PER_SECOND must be ≥ 0 (0: no limit)")
    return {
        # Off by default: an SMS can be read by anyone holding the phone (PIPL, CLINICAL-NOTES).
        "SMS_SHOW_DOSE": envbool(env, "SMS_SHOW_DOSE", False),
        "SMS_RATE_PER_SECOND": rate,
        "SMS_RETRY_HOURS": envfloat(env, "SMS_RETRY_HOURS", 2.0),
        # Longer than TWILIO_TIMEOUT: a row "sending" for longer was left by a crash.
        "SMS_SENDING_TIMEOUT_SECONDS": envint(env, "SMS_SENDING_TIMEOUT_SECONDS", 120),
        "SMS_BATCH_SIZE": envint(env, "SMS_BATCH_SIZE", 500),
        "SCHEDULER_INTERVAL_SECONDS": envint(env, "SCHEDULER_INTERVAL_SECONDS", 15),
        "SCHEDULER_STALE_MINUTES": envint(env, "SCHEDULER_STALE_MINUTES", 5),
        "DIGEST_TIME": _hhmm(env, "DIGEST_TIME", "08:30"),
        "STAFF_SMS_LANGUAGE": language,
        "LAB_OVERDUE_HOURS": envfloat(env, "LAB_OVERDUE_HOURS", 12.0),
    }


def _operations_settings(env: Mapping[str, str], production: bool) -> dict:
    """Logs, metrics and request limits (issue 14)."""
    log_format = env.get("LOG_FORMAT") or ("json" if production else "text")
    if log_format not in ("json", "text"):
        raise SettingsError(f"LOG_FORMAT must be json or text, not {log_format!r}")
    level = (env.get("LOG_LEVEL") or "INFO").upper()
    if level not in ("DEBUG", "INFO", "WARNING", "ERROR"):
        raise SettingsError(f"LOG_LEVEL must be DEBUG, INFO, WARNING or ERROR, not {level!r}")
    return {
        "LOG_FORMAT": log_format,
        "LOG_LEVEL": level,
        # Bearer token for GET /metrics; without one, /metrics answers only the machine itself.
        "METRICS_TOKEN": envsecret(env, "METRICS_TOKEN"),
        # A larger body is refused with a translated 413 before any view reads it.
        "MAX_CONTENT_LENGTH": envint(env, "MAX_CONTENT_LENGTH", 1024 * 1024),
        # Flask-Compress: brotli for browsers that take it, else gzip; files too (streamed).
        "COMPRESS_ALGORITHM": ["br", "gzip"],
        "COMPRESS_ALGORITHM_STREAMING": ["br", "gzip"],
        "COMPRESS_BR_LEVEL": 5,
    }
