"""A Tencent Cloud SMS test double: a real HTTP server speaking TencentCloud API 3.0.

Requests must carry a valid TC3-HMAC-SHA256 signature (recomputed here from the secret key, as
Tencent does) and a timestamp within five minutes; the official SDK (tencentcloud-sdk-python-sms)
talks to it unchanged once its HttpProfile points at ``double.url`` (TENCENT_SMS_ENDPOINT).

Actions: SendSms (2021-01-11) and PullSmsSendStatusByPhoneNumber. Errors come as the API sends
them: HTTP 200 with Response.Error, or per number in SendStatusSet. Tests program failures,
latency and outages, read what was "sent", and build the callbacks Tencent would post
(receipt_payload, reply_payload).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
import secrets
import time
import uuid
from collections import deque
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from werkzeug.wrappers import Request, Response

from tests.fakes.http_double import HttpDouble

SECRET_ID = "AKIDdoubletencent0000000000000000000"
SECRET_KEY = "double-tencent-secret-key"
SDK_APP_ID = "1400000001"
SIGN_NAME = "研究日记"
_AUTH = re.compile(r"^TC3-HMAC-SHA256 Credential=([^/]+)/(\d{4}-\d{2}-\d{2})/(\w+)/tc3_request, "
                   r"SignedHeaders=([\w;-]+), Signature=([0-9a-f]{64})$")
_E164 = re.compile(r"^\+[1-9]\d{6,14}$")


def _now() -> datetime:
    return datetime.now(UTC)


def _hmac(key: bytes, msg: str) -> bytes:
    return hmac.new(key, msg.encode(), hashlib.sha256).digest()


class TencentDouble(HttpDouble):
    name = "tencent"

    def __init__(self, *, secret_id: str = SECRET_ID, secret_key: str = SECRET_KEY, sdk_app_id: str = SDK_APP_ID,
                 sign_name: str = SIGN_NAME, templates: dict[str, int] | None = None,
                 clock: Callable[[], datetime] = _now, auto_receipt: bool = True, **kw) -> None:
        """`templates`: approved template id -> number of parameters (None: any id, any count).
        `auto_receipt`: each accepted message gets its delivery receipt at once (the status
        pull lists only receipted messages)."""
        super().__init__(**kw)
        self.secret_id, self.secret_key = secret_id, secret_key
        self.sdk_app_id, self.sign_name = sdk_app_id, sign_name
        self.templates = templates
        self.clock = clock
        self.auto_receipt = auto_receipt
        self._records: list[dict[str, Any]] = []
        self._failures: deque[tuple[str, str, str | None]] = deque()
        self._rejected: dict[str, str] = {}

    # --- programming it ------------------------------------------------------------------------

    def fail_next(self, n: int = 1, code: str = "InternalError.Timeout", message: str = "timeout",
                  *, action: str | None = None) -> None:
        """The next `n` API requests (only `action` ones if given) answer with this error."""
        with self._lock:
            for _ in range(n):
                self._failures.append((code, message, action))

    def reject(self, to: str, code: str = "FailedOperation.PhoneNumberInBlacklist") -> None:
        """Every SendSms to `to` gets this per-number status code."""
        with self._lock:
            self._rejected[to] = code

    @property
    def messages(self) -> list[dict[str, Any]]:
        """Accepted messages, oldest first: to, template_id, params, session_context, serial_no, text."""
        with self._lock:
            return [dict(r) for r in self._records]

    def receipt(self, serial_no: str) -> None:
        """The carrier's receipt for a message arrives (it now shows in the status pull)."""
        with self._lock:
            for record in self._records:
                if record["serial_no"] == serial_no:
                    record["receipted"] = True

    # --- the callbacks Tencent would post ------------------------------------------------------

    def receipt_payload(self, serial_no: str, success: bool = True, errmsg: str | None = None) -> list[dict]:
        record = next(r for r in self.messages if r["serial_no"] == serial_no)
        return [{"user_receive_time": self.clock().astimezone().strftime("%Y-%m-%d %H:%M:%S"),
                 "nationcode": "86", "mobile": record["to"].removeprefix("+86"),
                 "report_status": "SUCCESS" if success else "FAIL",
                 "errmsg": errmsg or ("DELIVRD" if success else "MK:0001"),
                 "description": "用户短信送达成功" if success else "用户短信接收失败", "sid": serial_no}]

    def reply_payload(self, from_: str, text: str, at: datetime | None = None) -> dict:
        return {"extend": "", "mobile": from_.removeprefix("+86"), "nationcode": "86", "sign": self.sign_name,
                "text": text, "time": int((at or self.clock()).timestamp())}

    # --- HTTP ----------------------------------------------------------------------------------

    def handle(self, request: Request) -> Response:
        action = request.headers.get("X-TC-Action", "")
        request_id = str(uuid.uuid4())
        problem = self._check_signature(request)
        if problem:
            self._log(action, problem[0])
            return self._error(problem[0], problem[1], request_id)
        with self._lock:
            failure = next((f for f in self._failures if f[2] in (None, action)), None)
            if failure:
                self._failures.remove(failure)
        if failure:
            self._log(action, failure[0])
            return self._error(failure[0], failure[1], request_id)
        try:
            params = json.loads(request.get_data(as_text=True) or "{}")
        except ValueError:
            return self._error("InvalidParameter", "body is not JSON", request_id)
        if request.headers.get("X-TC-Version") != "2021-01-11":
            return self._error("InvalidParameter.VersionError", "unsupported version", request_id)
        if action == "SendSms":
            return self._send(params, request_id)
        if action == "PullSmsSendStatusByPhoneNumber":
            return self._pull(params, request_id)
        return self._error("InvalidAction", f"no action {action}", request_id)

    def _check_signature(self, request: Request) -> tuple[str, str] | None:
        match = _AUTH.match(request.headers.get("Authorization", ""))
        if not match:
            return "AuthFailure.SignatureFailure", "Authorization is not TC3-HMAC-SHA256"
        secret_id, day, service, signed_headers, signature = match.groups()
        if secret_id != self.secret_id:
            return "AuthFailure.SecretIdNotFound", "unknown SecretId"
        try:
            timestamp = int(request.headers.get("X-TC-Timestamp", ""))
        except ValueError:
            return "AuthFailure.SignatureFailure", "missing X-TC-Timestamp"
        if abs(time.time() - timestamp) > 300:
            return "AuthFailure.SignatureExpire", "signature expired"
        if datetime.fromtimestamp(timestamp, UTC).strftime("%Y-%m-%d") != day or service != "sms":
            return "AuthFailure.SignatureFailure", "credential scope does not match"
        headers = "".join(f"{name}:{request.headers.get(name, '').strip()}\n" for name in signed_headers.split(";"))
        payload = hashlib.sha256(request.get_data()).hexdigest()
        canonical = "\n".join([request.method, request.path, request.query_string.decode(), headers, signed_headers,
                               payload])
        scope = f"{day}/sms/tc3_request"
        to_sign = f"TC3-HMAC-SHA256\n{timestamp}\n{scope}\n{hashlib.sha256(canonical.encode()).hexdigest()}"
        key = _hmac(_hmac(_hmac(("TC3" + self.secret_key).encode(), day), "sms"), "tc3_request")
        expected = hmac.new(key, to_sign.encode(), hashlib.sha256).hexdigest()
        if not hmac.compare_digest(expected, signature):
            return "AuthFailure.SignatureFailure", "signature does not match"
        return None

    @staticmethod
    def _error(code: str, message: str, request_id: str) -> Response:
        body = {"Response": {"Error": {"Code": code, "Message": message}, "RequestId": request_id}}
        return Response(json.dumps(body), mimetype="application/json")

    @staticmethod
    def _ok(body: dict, request_id: str) -> Response:
        return Response(json.dumps({"Response": {**body, "RequestId": request_id}}), mimetype="application/json")

    def _send(self, params: dict, request_id: str) -> Response:
        if params.get("SmsSdkAppId") != self.sdk_app_id:
            return self._error("InvalidParameterValue.SdkAppIdNotExist", "SmsSdkAppId does not exist", request_id)
        if params.get("SignName") != self.sign_name:
            return self._error("FailedOperation.SignatureIncorrectOrUnapproved", "signature not approved", request_id)
        template_id = str(params.get("TemplateId") or "")
        values = params.get("TemplateParamSet") or []
        if self.templates is not None:
            if template_id not in self.templates:
                return self._error("FailedOperation.TemplateIncorrectOrUnapproved", "template not approved",
                                   request_id)
            if len(values) != self.templates[template_id]:
                return self._error("InvalidParameterValue.TemplateParameterFormatError",
                                   "parameter count does not match the template", request_id)
        numbers = params.get("PhoneNumberSet") or []
        statuses = []
        for number in numbers:
            with self._lock:
                rejected = self._rejected.get(number)
            if not _E164.match(number) or rejected:
                code = rejected or "InvalidParameterValue.IncorrectPhoneNumber"
                statuses.append({"SerialNo": "", "PhoneNumber": number, "Fee": 0,
                                 "SessionContext": params.get("SessionContext", ""), "Code": code,
                                 "Message": code, "IsoCode": "CN"})
                self._log("SendSms", code)
                continue
            serial = f"2433:{secrets.randbelow(10**20):020d}{secrets.randbelow(10**10):010d}"
            with self._lock:
                self._records.append({"to": number, "template_id": template_id, "params": list(values),
                                      "session_context": params.get("SessionContext", ""), "serial_no": serial,
                                      "sent_at": self.clock(), "receipted": self.auto_receipt})
            statuses.append({"SerialNo": serial, "PhoneNumber": number, "Fee": 1,
                             "SessionContext": params.get("SessionContext", ""), "Code": "Ok",
                             "Message": "send success", "IsoCode": "CN"})
            self._log("SendSms", "Ok")
        return self._ok({"SendStatusSet": statuses}, request_id)

    def _pull(self, params: dict, request_id: str) -> Response:
        if params.get("SmsSdkAppId") != self.sdk_app_id:
            return self._error("InvalidParameterValue.SdkAppIdNotExist", "SmsSdkAppId does not exist", request_id)
        begin, end = int(params.get("BeginTime") or 0), params.get("EndTime")
        limit = min(int(params.get("Limit") or 100), 100)
        with self._lock:
            found = [r for r in self._records if r["to"] == params.get("PhoneNumber") and r["receipted"]
                     and r["sent_at"].timestamp() >= begin and (end is None or r["sent_at"].timestamp() <= int(end))]
        self._log("PullSmsSendStatusByPhoneNumber", "Ok")
        statuses = [{"UserReceiveTime": int(r["sent_at"].timestamp()), "CountryCode": "86",
                     "SubscriberNumber": r["to"].removeprefix("+86"), "PhoneNumber": r["to"],
                     "SerialNo": r["serial_no"], "ReportStatus": "SUCCESS", "Description": "DELIVRD",
                     "SessionContext": r["session_context"]} for r in found[:limit]]
        return self._ok({"PullSmsSendStatusSet": statuses}, request_id)
