"""Fixtures' helpers for the domestic providers: a double per provider, the settings that point
the app's gateway at it (through build_gateway, as in production), and one interface over both
doubles so that each test runs unchanged for Tencent Cloud SMS and Alibaba Cloud SMS."""

from __future__ import annotations

import os
from pathlib import Path

from diary.messaging import texts
from tests.fakes import aliyun_double, tencent_double

CALLBACK_SECRET = "cb-" + "7f3a9c21d84e6b50" * 3


def template_ids(provider: str) -> dict[str, dict[str, str]]:
    """{language: {key: id}}: every template "approved" with its own id."""
    ids = {}
    for language in texts.LANGUAGES:
        ids[language] = {key: (f"{2000 + n}" if provider == "tencent" else f"SMS_{4000 + n}")
                         for n, key in enumerate(sorted(texts.CATALOGUE))}
    return ids


def write_templates_toml(path: Path, providers: list[str], *, leave_out: str | None = None) -> Path:
    lines = []
    for provider in providers:
        for language, keys in template_ids(provider).items():
            lines.append(f"[{provider}.{language}]")
            lines += [f'{key} = "{value}"' for key, value in keys.items() if key != leave_out]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


class Provider:
    """One double behind a provider-neutral interface."""

    def __init__(self, name: str, clock):
        self.name = name
        if name == "tencent":
            # Approved templates and their parameter counts (the same in both languages).
            approved = {template_ids(name)[lang][key]: len(texts.CATALOGUE[key].params)
                        for lang in texts.LANGUAGES for key in texts.CATALOGUE}
            self.double = tencent_double.TencentDouble(templates=approved, clock=clock)
        else:
            approved = {template_ids(name)[lang][key]: {p.name for p in texts.CATALOGUE[key].params}
                        for lang in texts.LANGUAGES for key in texts.CATALOGUE}
            self.double = aliyun_double.AliyunDouble(templates=approved, clock=clock)
        self.keys_by_id = {value: key for lang in texts.LANGUAGES for key, value in template_ids(name)[lang].items()}

    def settings(self) -> dict[str, str]:
        if self.name == "tencent":
            return {"TENCENT_SECRET_ID": tencent_double.SECRET_ID, "TENCENT_SECRET_KEY": tencent_double.SECRET_KEY,
                    "TENCENT_SMS_SDK_APP_ID": tencent_double.SDK_APP_ID,
                    "TENCENT_SMS_SIGN_NAME": tencent_double.SIGN_NAME, "TENCENT_SMS_ENDPOINT": self.double.url}
        return {"ALIYUN_ACCESS_KEY_ID": aliyun_double.ACCESS_KEY_ID,
                "ALIYUN_ACCESS_KEY_SECRET": aliyun_double.ACCESS_KEY_SECRET,
                "ALIYUN_SMS_SIGN_NAME": aliyun_double.SIGN_NAME, "ALIYUN_SMS_ENDPOINT": self.double.url}

    # --- what reached it --------------------------------------------------------------------------

    def sent(self) -> list[dict]:
        """[{to, key, params, ref, id, at}] in a shape common to both providers."""
        out = []
        for m in self.double.messages:
            if self.name == "tencent":
                out.append({"to": m["to"], "key": self.keys_by_id[m["template_id"]], "params": m["params"],
                            "ref": m["session_context"], "id": m["serial_no"], "at": m["sent_at"]})
            else:
                out.append({"to": m["to"], "key": self.keys_by_id[m["template_code"]], "params": m["params"],
                            "ref": m["out_id"], "id": m["biz_id"], "at": m["sent_at"]})
        return out

    def sent_to(self, phone: str) -> list[dict]:
        return [m for m in self.sent() if m["to"] == phone]

    # --- programming it -----------------------------------------------------------------------------

    def throttle_next(self, n: int) -> None:
        if self.name == "tencent":
            self.double.fail_next(n, "LimitExceeded.PhoneNumberThirtySecondLimit", "30秒内下发短信条数超过上限",
                                  action="SendSms")
        else:
            self.double.fail_next(n, "isv.BUSINESS_LIMIT_CONTROL", "业务限流", action="SendSms")

    def fail_inside_next(self, n: int) -> None:
        """Provider-side errors (an outage behind its front door)."""
        if self.name == "tencent":
            self.double.fail_next(n, "InternalError.SendAndRecvFail", "接口超时或短信收发包超时", action="SendSms")
        else:
            self.double.fail_next(n, "ServiceUnavailable", "The request has failed due to a temporary failure",
                                  status=503, action="SendSms")

    def reject(self, phone: str) -> None:
        """The number is blacklisted / unsubscribed at the provider."""
        if self.name == "tencent":
            self.double.reject(phone, "FailedOperation.PhoneNumberInBlacklist")
        else:
            self.double.reject(phone, "isv.MOBILE_IN_BLACK")

    # --- its callbacks --------------------------------------------------------------------------------

    def receipt(self, provider_id: str, success: bool = True):
        return self.double.receipt_payload(provider_id, success)

    def reply(self, phone: str, text: str):
        return self.double.reply_payload(phone, text)

    def path(self, kind: str, secret: str = CALLBACK_SECRET) -> str:
        return f"/sms/{self.name}/{secret}/{kind}"


def process_env(providers: list[Provider], database_url: str, templates: Path, tmp_path: Path) -> dict:
    env = {**os.environ, "DATABASE_URL": database_url, "SECRET_KEY": "test-secret-key",
           "DATA_ENCRYPTION_KEY": "test-data-key", "SMS_BACKEND": ",".join(p.name for p in providers),
           "SMS_TEMPLATES": str(templates), "SMS_RATE_PER_SECOND": "0", "SCHEDULER_INTERVAL_SECONDS": "1",
           "SMS_PROVIDER_TIMEOUT": "5", "AUDIT_ANCHOR_PATH": str(tmp_path / "audit-anchors.jsonl")}
    for provider in providers:
        env.update(provider.settings())
    return env
