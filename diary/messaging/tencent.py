"""Tencent Cloud SMS (短信) with the official SDK: template id plus positional parameters.

Error codes map to retry or permanent here and nowhere else. An uncertain send is reconciled
with PullSmsSendStatusByPhoneNumber, matching the SessionContext we set (our message reference).
That list holds a message only once its delivery receipt is in, so until `receipt_wait` has passed
since the attempt, "not found" means "cannot tell yet" and the row waits rather than resending.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from datetime import datetime, timedelta
from typing import Any

from tencentcloud.common import credential
from tencentcloud.common.exception.tencent_cloud_sdk_exception import TencentCloudSDKException
from tencentcloud.common.profile.client_profile import ClientProfile
from tencentcloud.common.profile.http_profile import HttpProfile
from tencentcloud.sms.v20210111 import models, sms_client

from diary.messaging import texts
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

# https://cloud.tencent.com/document/product/382/55981 (SendSms error codes) and the per-number
# SendStatus codes: what no retry can fix.
PERMANENT: dict[str, str] = {
    "InvalidParameterValue.IncorrectPhoneNumber": "invalid phone number",
    "FailedOperation.PhoneNumberInBlacklist": "the number is blacklisted or unsubscribed",
    "FailedOperation.TemplateIncorrectOrUnapproved": "template not approved",
    "FailedOperation.SignatureIncorrectOrUnapproved": "signature not approved",
    "FailedOperation.MissingTemplateToModify": "template not found",
    "FailedOperation.ContainSensitiveWord": "content refused",
    "FailedOperation.InsufficientBalanceInSmsPackage": "SMS package used up",
    "InvalidParameterValue.TemplateParameterFormatError": "template parameter refused",
    "InvalidParameterValue.TemplateParameterLengthLimit": "template parameter too long",
    "InvalidParameterValue.ProhibitedUseUrlInTemplateParameter": "link in a template parameter",
    "InvalidParameterValue.SdkAppIdNotExist": "unknown SmsSdkAppId",
    "UnauthorizedOperation.SmsSdkAppIdVerifyFail": "SmsSdkAppId does not belong to this account",
    "AuthFailure.SecretIdNotFound": "unknown SecretId",
    "AuthFailure.SignatureFailure": "request signature refused",
    "UnsupportedOperation.ContainDomesticAndInternationalPhoneNumber": "mixed numbers",
}
# Rate limits, throttling and Tencent-side failures clear up by themselves.
TRANSIENT_PREFIXES = ("LimitExceeded.", "RequestLimitExceeded", "InternalError", "ServerNetworkError",
                      "FailedOperation.FailResolvePacket", "ResourceUnavailable")


def tencent_error(code: str, message: str, *, status: int | None = 200) -> GatewayError:
    """Map a Tencent error code (API error or per-number SendStatus) to a GatewayError."""
    return provider_error("Tencent Cloud SMS", code, message, permanent=not code.startswith(TRANSIENT_PREFIXES),
                          explained=PERMANENT, status=status)


class TencentGateway:
    provider = "tencent"
    page_size = 100

    def __init__(self, secret_id: str, secret_key: str, *, sdk_app_id: str, sign_name: str,
                 template_ids: Mapping[str, Mapping[str, str]], endpoint: str | None = None,
                 region: str = "ap-guangzhou", timeout: float = 10.0,
                 receipt_wait: timedelta = timedelta(minutes=10),
                 clock: Callable[[], datetime] = utc_now) -> None:
        if not secret_id or not secret_key or not sdk_app_id or not sign_name:
            raise ValueError("TencentGateway needs a SecretId, a SecretKey, an SDK app id and a signature")
        self.sdk_app_id, self.sign_name = sdk_app_id, sign_name
        self.template_ids = template_ids
        self.timeout = timeout
        self.receipt_wait = receipt_wait
        self.clock = clock
        http = HttpProfile(reqTimeout=max(int(timeout), 1))
        parts = endpoint_parts(endpoint, "TENCENT_SMS_ENDPOINT")
        if parts:
            http.protocol = http.scheme = parts[0]
            http.endpoint = parts[1]
        else:
            http.endpoint = "sms.tencentcloudapi.com"
        self._client = sms_client.SmsClient(credential.Credential(secret_id, secret_key), region,
                                            ClientProfile(httpProfile=http))

    def send(self, to: str, body: str, *, status_callback: str | None = None,
             template: TemplateRef | None = None) -> str:
        request = models.SendSmsRequest()
        request.PhoneNumberSet = [to]
        request.SmsSdkAppId = self.sdk_app_id
        request.SignName = self.sign_name
        request.TemplateId = self._template_id(template)
        request.TemplateParamSet = [template.params[name] for name in texts.variables(template.key, template.language)]
        request.SessionContext = template.ref or ""
        try:
            response = self._client.SendSms(request)
        except TencentCloudSDKException as exc:
            raise self._error(exc) from None
        status = (response.SendStatusSet or [None])[0]
        if status is None:
            raise GatewayError("Tencent Cloud SMS: answer without a send status", status=200)
        if status.Code != "Ok":
            raise tencent_error(status.Code or "", status.Message or "")
        log.info("tencent accepted %s for %s", status.SerialNo, mask_phone(to))
        return SentId(status.SerialNo, self.provider)

    def find_sent(self, to: str, since: datetime, body: str, *, template: TemplateRef | None = None) -> str | None:
        if template is None or not template.ref:
            return None  # never sent through a template provider
        request = models.PullSmsSendStatusByPhoneNumberRequest()
        request.BeginTime = int(since.timestamp())
        request.Offset = 0
        request.Limit = self.page_size
        request.PhoneNumber = to
        request.SmsSdkAppId = self.sdk_app_id
        try:
            response = self._client.PullSmsSendStatusByPhoneNumber(request)
        except TencentCloudSDKException as exc:
            raise self._error(exc) from None
        for status in response.PullSmsSendStatusSet or []:
            if status.SessionContext == template.ref:
                return SentId(status.SerialNo, self.provider)
        attempted = template.attempted_at or since
        if self.clock() - attempted < self.receipt_wait:
            # Only receipted messages are listed: too early to prove it was not sent.
            raise GatewayError("Tencent Cloud SMS: no delivery receipt yet; cannot tell whether it was sent")
        return None

    def _template_id(self, template: TemplateRef | None) -> str:
        return filed_template_id(self.template_ids, template, self.provider, "Tencent Cloud SMS")

    def _error(self, exc: TencentCloudSDKException) -> GatewayError:
        code = exc.get_code() or ""
        if code == "ClientNetworkError":
            if never_reached(exc):
                return GatewayError("cannot reach Tencent Cloud SMS", not_sent=True)
            return GatewayError(f"no answer from Tencent Cloud SMS within {self.timeout:g}s; "
                                "it may have accepted the message")
        if code == "ServerNetworkError":
            # An HTTP status other than 200 comes from a proxy or load balancer, which may have
            # passed the request on: uncertain, reconciled before any resend.
            return GatewayError("Tencent Cloud SMS answered with an HTTP error; it may have accepted the message")
        return tencent_error(code, exc.get_message() or "")


def _setting(config: Mapping[str, Any], key: str, default: int) -> int:
    value = config.get(key)
    return default if value in (None, "") else int(value)


def build_tencent(config: Mapping[str, Any]) -> TencentGateway:
    from diary.messaging.filing import load_template_ids, missing_template_ids

    problems = missing_template_ids(config, providers=["tencent"])
    if problems:
        raise ValueError("\n".join(problems))
    needed = ("TENCENT_SECRET_ID", "TENCENT_SECRET_KEY", "TENCENT_SMS_SDK_APP_ID", "TENCENT_SMS_SIGN_NAME")
    missing = [key for key in needed if not config.get(key)]
    if missing:
        raise ValueError(f"SMS_BACKEND=tencent needs {', '.join(missing)}")
    return TencentGateway(
        config["TENCENT_SECRET_ID"], config["TENCENT_SECRET_KEY"], sdk_app_id=str(config["TENCENT_SMS_SDK_APP_ID"]),
        sign_name=config["TENCENT_SMS_SIGN_NAME"],
        template_ids=load_template_ids(config.get("SMS_TEMPLATES")).get("tencent", {}),
        endpoint=config.get("TENCENT_SMS_ENDPOINT"), region=config.get("TENCENT_SMS_REGION") or "ap-guangzhou",
        timeout=float(config.get("SMS_PROVIDER_TIMEOUT") or 10),
        receipt_wait=timedelta(seconds=int(_setting(config, "TENCENT_SMS_RECEIPT_WAIT_SECONDS", 600))),
    )
