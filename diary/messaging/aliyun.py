"""Alibaba Cloud SMS (阿里云短信, Dysmsapi 2017-05-25) with the official SDK: template code plus
named ${x} parameters.

Error codes map to retry or permanent here and nowhere else. Each message carries our reference
as OutId; an uncertain send is reconciled with QuerySendDetails, which lists a message as soon
as Alibaba accepted it (SendStatus 1, waiting for the receipt), so "not found" proves it was not.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Mapping
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from alibabacloud_dysmsapi20170525 import models
from alibabacloud_dysmsapi20170525.client import Client
from alibabacloud_tea_openapi import models as openapi_models
from alibabacloud_tea_openapi.exceptions import AlibabaCloudException
from darabonba.runtime import RuntimeOptions
from Tea.exceptions import TeaException

from diary.messaging.gateway import (
    GatewayError,
    SentId,
    TemplateRef,
    endpoint_parts,
    filed_template_id,
    mask_phone,
    never_reached,
    provider_error,
)
from diary.sqltypes import utc_now

log = logging.getLogger(__name__)
CHINA = ZoneInfo("Asia/Shanghai")  # QuerySendDetails takes the sending day in China time

# https://help.aliyun.com/zh/sms/developer-reference/api-error-codes: what no retry can fix.
PERMANENT: dict[str, str] = {
    "isv.MOBILE_NUMBER_ILLEGAL": "invalid phone number",
    "isv.BLACK_KEY_CONTROL_LIMIT": "content blacklisted",
    "isv.SMS_TEMPLATE_ILLEGAL": "template not approved",
    "isv.SMS_SIGNATURE_ILLEGAL": "signature not approved",
    "isv.TEMPLATE_MISSING_PARAMETERS": "template parameter missing",
    "isv.INVALID_PARAMETERS": "invalid parameters",
    "isv.INVALID_JSON_PARAM": "invalid template parameters",
    "isv.PARAM_LENGTH_LIMIT": "template parameter too long",
    "isv.AMOUNT_NOT_ENOUGH": "account balance used up",
    "isv.ACCOUNT_NOT_EXISTS": "account does not exist",
    "isv.ACCOUNT_ABNORMAL": "account suspended",
    "isv.PRODUCT_UN_SUBSCRIPT": "SMS not activated",
    "isv.OUT_OF_SERVICE": "service suspended",
    "isv.DENY_IP_RANGE": "source IP refused",
    "isv.MOBILE_IN_BLACK": "the number is blacklisted or unsubscribed",
    "isv.SMS_CONTENT_ILLEGAL": "content refused",
    "isp.RAM_PERMISSION_DENY": "RAM permission denied",
    "InvalidAccessKeyId.NotFound": "unknown AccessKey",
    "SignatureDoesNotMatch": "request signature refused",
}
# Throttling and Alibaba-side failures clear up by themselves.
TRANSIENT = frozenset({"isv.BUSINESS_LIMIT_CONTROL", "isv.DAY_LIMIT_CONTROL", "isp.SYSTEM_ERROR",
                       "isp.GATEWAY_ERROR", "Throttling", "Throttling.User", "Throttling.Api",
                       "ServiceUnavailable", "InternalError"})


def aliyun_error(code: str, message: str, *, status: int | None = 200) -> GatewayError:
    """Map an Alibaba Cloud SMS error code to a GatewayError."""
    transient = code in TRANSIENT or code.startswith("isp.") and code not in PERMANENT or code.startswith("Throttling")
    return provider_error("Alibaba Cloud SMS", code, message, permanent=not transient, explained=PERMANENT,
                          status=status)


class AliyunGateway:
    provider = "aliyun"
    page_size = 50

    def __init__(self, access_key_id: str, access_key_secret: str, *, sign_name: str,
                 template_ids: Mapping[str, Mapping[str, str]], endpoint: str | None = None,
                 timeout: float = 10.0, clock: Callable[[], datetime] = utc_now) -> None:
        if not access_key_id or not access_key_secret or not sign_name:
            raise ValueError("AliyunGateway needs an AccessKey id, its secret and a signature")
        self.sign_name = sign_name
        self.template_ids = template_ids
        self.timeout = timeout
        self.clock = clock
        config = openapi_models.Config(access_key_id=access_key_id, access_key_secret=access_key_secret,
                                       region_id="cn-hangzhou", read_timeout=int(timeout * 1000),
                                       connect_timeout=int(min(timeout, 5) * 1000))
        parts = endpoint_parts(endpoint, "ALIYUN_SMS_ENDPOINT")
        if parts:
            config.protocol, config.endpoint = parts[0].upper(), parts[1]
        else:
            config.endpoint = "dysmsapi.aliyuncs.com"
        self._client = Client(config)
        self._runtime = RuntimeOptions(autoretry=False, read_timeout=int(timeout * 1000),
                                       connect_timeout=int(min(timeout, 5) * 1000))

    def send(self, to: str, body: str, *, status_callback: str | None = None,
             template: TemplateRef | None = None) -> str:
        request = models.SendSmsRequest(
            phone_numbers=_number(to), sign_name=self.sign_name, template_code=self._template_id(template),
            template_param=json.dumps(dict(template.params), ensure_ascii=False), out_id=template.ref or None)
        try:
            response = self._client.send_sms_with_options(request, self._runtime)
        except Exception as exc:
            raise self._error(exc) from None
        answer = response.body
        if answer is None or answer.code != "OK":
            raise aliyun_error(getattr(answer, "code", "") or "", getattr(answer, "message", "") or "")
        log.info("aliyun accepted %s for %s", answer.biz_id, mask_phone(to))
        return SentId(answer.biz_id, self.provider)

    def find_sent(self, to: str, since: datetime, body: str, *, template: TemplateRef | None = None) -> str | None:
        if template is None or not template.ref:
            return None  # never sent through a template provider
        latest = max(self.clock(), template.attempted_at or since, since)
        day, last = since.astimezone(CHINA).date(), latest.astimezone(CHINA).date()
        while day <= last:
            page = 1
            while True:
                request = models.QuerySendDetailsRequest(phone_number=_number(to), send_date=day.strftime("%Y%m%d"),
                                                         page_size=self.page_size, current_page=page)
                try:
                    answer = self._client.query_send_details_with_options(request, self._runtime).body
                except Exception as exc:
                    raise self._error(exc) from None
                if answer.code != "OK":
                    raise aliyun_error(answer.code or "", answer.message or "")
                details = answer.sms_send_detail_dtos.sms_send_detail_dto if answer.sms_send_detail_dtos else []
                for detail in details or []:
                    if detail.out_id == template.ref:
                        # The list has no BizId: receipts find the row by OutId (webhooks).
                        return SentId(template.ref, self.provider)
                if page * self.page_size >= int(answer.total_count or 0):
                    break
                page += 1
            day += timedelta(days=1)
        return None

    def _template_id(self, template: TemplateRef | None) -> str:
        return filed_template_id(self.template_ids, template, self.provider, "Alibaba Cloud SMS")

    def _error(self, exc: Exception) -> GatewayError:
        if isinstance(exc, AlibabaCloudException):
            status = getattr(exc, "status_code", None) or 500
            return aliyun_error(str(exc.code or ""), str(getattr(exc, "message", "") or ""), status=status)
        if isinstance(exc, TeaException):  # the request failed on the network
            if never_reached(exc):
                return GatewayError("cannot reach Alibaba Cloud SMS", not_sent=True)
            return GatewayError(f"no answer from Alibaba Cloud SMS within {self.timeout:g}s; "
                                "it may have accepted the message")
        if isinstance(exc, ValueError):
            return GatewayError(f"unreadable answer from Alibaba Cloud SMS ({type(exc).__name__})")
        raise exc


def _number(to: str) -> str:
    # Dysmsapi takes 86xxxxxxxxxxx (or a bare mainland number) without the "+".
    return to.lstrip("+")


def build_aliyun(config: Mapping[str, Any]) -> AliyunGateway:
    from diary.messaging.filing import load_template_ids, missing_template_ids

    problems = missing_template_ids(config, providers=["aliyun"])
    if problems:
        raise ValueError("\n".join(problems))
    needed = ("ALIYUN_ACCESS_KEY_ID", "ALIYUN_ACCESS_KEY_SECRET", "ALIYUN_SMS_SIGN_NAME")
    missing = [key for key in needed if not config.get(key)]
    if missing:
        raise ValueError(f"SMS_BACKEND=aliyun needs {', '.join(missing)}")
    return AliyunGateway(
        config["ALIYUN_ACCESS_KEY_ID"], config["ALIYUN_ACCESS_KEY_SECRET"], sign_name=config["ALIYUN_SMS_SIGN_NAME"],
        template_ids=load_template_ids(config.get("SMS_TEMPLATES")).get("aliyun", {}),
        endpoint=config.get("ALIYUN_SMS_ENDPOINT"), timeout=float(config.get("SMS_PROVIDER_TIMEOUT") or 10),
    )
