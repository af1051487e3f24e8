"""An Alibaba Cloud SMS test double: a real HTTP server speaking Dysmsapi 2017-05-25.

RPC-style requests (Action and parameters in the query, x-acs-action header) must be signed
with ACS3-HMAC-SHA256 over the canonical request, recomputed here from the AccessKey secret as
Alibaba Cloud does, with a fresh x-acs-signature-nonce; the official SDK
(alibabacloud-dysmsapi20170525) talks to it unchanged once its endpoint is ``double.url``
(ALIYUN_SMS_ENDPOINT).

Actions: SendSms and QuerySendDetails. Business errors come with HTTP 200 and their Code, as the
API sends them. Tests program failures, latency and outages, read what was "sent", and build the
callbacks Alibaba would post (receipt_payload, reply_payload).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
import secrets
import uuid
from collections import deque
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote
from zoneinfo import ZoneInfo

from werkzeug.wrappers import Request, Response

from tests.fakes.http_double import HttpDouble

ACCESS_KEY_ID = "LTAIdoublealiyun00000000"
ACCESS_KEY_SECRET = "double-aliyun-access-key-secret"
SIGN_NAME = "研究日记"
CHINA = ZoneInfo("Asia/Shanghai")
_AUTH = re.compile(r"^ACS3-HMAC-SHA256 Credential=([^,]+),SignedHeaders=([\w;-]+),Signature=([0-9a-f]{64})$")
_NUMBER = re.compile(r"^(?:86)?1\d{10}$")


def _now() -> datetime:
    return datetime.now(UTC)


class AliyunDouble(HttpDouble):
    name = "aliyun"

    def __init__(self, *, access_key_id: str = ACCESS_KEY_ID, access_key_secret: str = ACCESS_KEY_SECRET,
                 sign_name: str = SIGN_NAME, templates: dict[str, set[str]] | None = None,
                 clock: Callable[[], datetime] = _now, **kw) -> None:
        """`templates`: approved template code -> its ${names} (None: any code, any names)."""
        super().__init__(**kw)
        self.access_key_id, self.access_key_secret = access_key_id, access_key_secret
        self.sign_name = sign_name
        self.templates = templates
        self.clock = clock
        self._records: list[dict[str, Any]] = []
        self._failures: deque[tuple[str, str, int, str | None]] = deque()
        self._rejected: dict[str, str] = {}
        self._nonces: set[str] = set()

    # --- programming it ------------------------------------------------------------------------

    def fail_next(self, n: int = 1, code: str = "isp.SYSTEM_ERROR", message: str = "system error",
                  *, status: int = 200, action: str | None = None) -> None:
        """The next `n` API requests (only `action` ones if given) answer with this error."""
        with self._lock:
            for _ in range(n):
                self._failures.append((code, message, status, action))

    def reject(self, number: str, code: str = "isv.MOBILE_NUMBER_ILLEGAL") -> None:
        """Every SendSms to `number` (as given, e.g. +8613800000000) fails with this code."""
        with self._lock:
            self._rejected[number.lstrip("+")] = code

    @property
    def messages(self) -> list[dict[str, Any]]:
        """Accepted messages, oldest first: to (+86…), template_code, params, out_id, biz_id."""
        with self._lock:
            return [dict(r) for r in self._records]

    # --- the callbacks Alibaba would post -------------------------------------------------------

    def receipt_payload(self, biz_id: str, success: bool = True, err_code: str | None = None) -> list[dict]:
        record = next(r for r in self.messages if r["biz_id"] == biz_id)
        stamp = self.clock().astimezone(CHINA).strftime("%Y-%m-%d %H:%M:%S")
        return [{"phone_number": record["to"].removeprefix("+86"), "send_time": stamp, "report_time": stamp,
                 "success": success, "err_code": err_code or ("DELIVERED" if success else "MOBILE_IN_BLACK"),
                 "err_msg": "用户接收成功" if success else "用户接收失败", "sms_size": "1", "biz_id": biz_id,
                 "out_id": record["out_id"] or ""}]

    def reply_payload(self, from_: str, text: str, at: datetime | None = None) -> list[dict]:
        return [{"phone_number": from_.removeprefix("+86"), "content": text, "sign_name": self.sign_name,
                 "dest_code": "1234", "sequence_id": secrets.randbelow(10**12),
                 "send_time": (at or self.clock()).astimezone(CHINA).strftime("%Y-%m-%d %H:%M:%S")}]

    # --- HTTP ----------------------------------------------------------------------------------

    def handle(self, request: Request) -> Response:
        action = request.headers.get("x-acs-action", "")
        request_id = str(uuid.uuid4()).upper()
        problem = self._check_signature(request)
        if problem:
            self._log(action, problem[0])
            return self._json({"Code": problem[0], "Message": problem[1], "RequestId": request_id}, 400)
        with self._lock:
            failure = next((f for f in self._failures if f[3] in (None, action)), None)
            if failure:
                self._failures.remove(failure)
        if failure:
            code, message, status, _ = failure
            self._log(action, code)
            return self._json({"Code": code, "Message": message, "RequestId": request_id}, status)
        if request.headers.get("x-acs-version") != "2017-05-25":
            return self._json({"Code": "InvalidVersion", "Message": "version", "RequestId": request_id}, 400)
        query = request.args
        if action == "SendSms":
            return self._send(query, request_id)
        if action == "QuerySendDetails":
            return self._query(query, request_id)
        return self._json({"Code": "InvalidAction.NotFound", "Message": action, "RequestId": request_id}, 404)

    def _check_signature(self, request: Request) -> tuple[str, str] | None:
        match = _AUTH.match(request.headers.get("Authorization", ""))
        if not match:
            return "MissingAuthorization", "no ACS3-HMAC-SHA256 Authorization"
        key_id, signed_headers, signature = match.groups()
        if key_id != self.access_key_id:
            return "InvalidAccessKeyId.NotFound", "Specified access key is not found."
        names = signed_headers.split(";")
        if not {"host", "x-acs-action", "x-acs-content-sha256", "x-acs-date", "x-acs-signature-nonce"} <= set(names):
            return "IncompleteSignature", "required headers are not signed"
        body_hash = hashlib.sha256(request.get_data()).hexdigest()
        if request.headers.get("x-acs-content-sha256") != body_hash:
            return "IncompleteSignature", "x-acs-content-sha256 does not match the body"
        query = "&".join(f"{key}={quote(value, safe='~')}" for key, value in sorted(request.args.items()))
        headers = "".join(f"{name}:{request.headers.get(name, '').strip()}\n" for name in names)
        canonical = "\n".join([request.method, request.path or "/", query, headers, signed_headers, body_hash])
        to_sign = f"ACS3-HMAC-SHA256\n{hashlib.sha256(canonical.encode()).hexdigest()}"
        expected = hmac.new(self.access_key_secret.encode(), to_sign.encode(), hashlib.sha256).hexdigest()
        if not hmac.compare_digest(expected, signature):
            return "SignatureDoesNotMatch", "Specified signature is not matched with our calculation."
        nonce = request.headers.get("x-acs-signature-nonce", "")
        with self._lock:
            if nonce in self._nonces:
                return "SignatureNonceUsed", "Specified signature nonce was used already."
            self._nonces.add(nonce)
        return None

    @staticmethod
    def _json(body: dict, status: int = 200) -> Response:
        return Response(json.dumps(body, ensure_ascii=False), status=status, mimetype="application/json")

    def _send(self, query, request_id: str) -> Response:
        def refuse(code: str, message: str) -> Response:
            self._log("SendSms", code)
            return self._json({"Code": code, "Message": message, "RequestId": request_id})

        number = query.get("PhoneNumbers", "")
        if query.get("SignName") != self.sign_name:
            return refuse("isv.SMS_SIGNATURE_ILLEGAL", "该账号下找不到对应签名")
        code = query.get("TemplateCode", "")
        try:
            params = json.loads(query.get("TemplateParam") or "{}")
        except ValueError:
            return refuse("isv.INVALID_JSON_PARAM", "JSON参数不合法")
        if self.templates is not None:
            if code not in self.templates:
                return refuse("isv.SMS_TEMPLATE_ILLEGAL", "该账号下找不到对应模板")
            if set(params) != self.templates[code]:
                return refuse("isv.TEMPLATE_MISSING_PARAMETERS", "模板变量缺少对应参数值")
        with self._lock:
            rejected = self._rejected.get(number)
        if rejected or not _NUMBER.match(number):
            return refuse(rejected or "isv.MOBILE_NUMBER_ILLEGAL", "手机号码格式错误")
        biz_id = f"{secrets.randbelow(10**15):015d}^0"
        to = "+" + number if number.startswith("86") else "+86" + number
        with self._lock:
            self._records.append({"to": to, "template_code": code, "params": params,
                                  "out_id": query.get("OutId"), "biz_id": biz_id, "sent_at": self.clock()})
        self._log("SendSms", "OK")
        return self._json({"Code": "OK", "Message": "OK", "BizId": biz_id, "RequestId": request_id})

    def _query(self, query, request_id: str) -> Response:
        number = query.get("PhoneNumber", "")
        to = "+" + number if number.startswith("86") else "+86" + number
        day = query.get("SendDate", "")
        size = min(int(query.get("PageSize") or 10), 50)
        page = max(int(query.get("CurrentPage") or 1), 1)
        with self._lock:
            found = [r for r in self._records
                     if r["to"] == to and r["sent_at"].astimezone(CHINA).strftime("%Y%m%d") == day]
        chunk = found[(page - 1) * size: page * size]
        self._log("QuerySendDetails", "OK")
        details = [{"PhoneNum": number, "SendStatus": 3, "ErrCode": "DELIVERED", "TemplateCode": r["template_code"],
                    "Content": "", "SendDate": r["sent_at"].astimezone(CHINA).strftime("%Y-%m-%d %H:%M:%S"),
                    "ReceiveDate": r["sent_at"].astimezone(CHINA).strftime("%Y-%m-%d %H:%M:%S"),
                    "OutId": r["out_id"] or ""} for r in chunk]
        return self._json({"Code": "OK", "Message": "OK", "RequestId": request_id, "TotalCount": len(found),
                           "SmsSendDetailDTOs": {"SmsSendDetailDTO": details}})
