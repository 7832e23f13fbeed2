"""A strict Aliyun Dysmsapi simulator: SendSms, SendBatchSms and QuerySendDetails over the RPC
protocol.

It checks what the real gateway checks (signature, timestamp window, nonce reuse, access key),
then what the SMS service checks (numbers, sign name, template, parameters as strings, counts,
per-number rolling 24 h limits) and answers with the same codes and HTTP statuses. Accepted
messages produce one ``SmsReport`` JSON array per request, pushed to ``callback_url``. The stats
count ``repeats``: numbers a campaign (the ``OutId`` before its first ``:``) messaged again.
"""

from __future__ import annotations

import json
import re
import time
import uuid
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from aiohttp import web

from channels import aliyun_signature
from channels.content import DEFAULT_SMS
from channels.simulators.common import (
    RANDOM,
    STATS,
    Callback,
    CallbackSender,
    Faults,
    address_in_share,
    base_app,
    faults_of,
)

PHONE = re.compile(r"^(?:\+86|0086|86)?1[3-9]\d{9}$")
DEFAULT_TEMPLATE_VARIABLES = DEFAULT_SMS.variables


@dataclass(frozen=True)
class SmsSimConfig:
    """What the simulated account has: keys, approved signatures and templates, limits."""

    access_keys: Mapping[str, str]  # AccessKeyId -> AccessKeySecret
    sign_names: frozenset[str]
    templates: Mapping[str, tuple[str, ...]]  # TemplateCode -> variable names
    callback_url: str = ""
    max_numbers: int = 1000  # SendSms
    max_batch_numbers: int = 100  # SendBatchSms
    per_number_daily: int = 50  # same sign + template + number, rolling 24 h; 0: no limit
    param_max_length: int = 35
    timestamp_window_s: float = 900.0
    receipt_fail_code: str = "UNDELIV"
    history_requests: int = 20_000  # accepted requests remembered for QuerySendDetails
    faults: Faults = field(default_factory=Faults)


class SmsSimulator:
    """State of one simulated account: nonces seen, per-number send times, BizId counter."""

    def __init__(self, config: SmsSimConfig, *, sender: CallbackSender) -> None:
        self.config = config
        self._sender = sender
        self._nonces: dict[str, float] = {}
        self._sends: dict[str, list[float]] = {}
        self._prune_at = 100_000
        # Accepted requests for QuerySendDetails: (send time, OutId, template, ",n1,n2,...,").
        # Kept per request, not per number: the query is rare and may scan, the send path
        # must stay cheap at a million numbers.
        self._history: deque[tuple[str, str, str, str]] = deque(
            maxlen=config.history_requests)
        self._biz_seq = 900619746936498
        # (campaign, number) pairs already messaged, hashed: a million numbers cost ~60 MB.
        self._messaged: set[int] = set()

    def gateway_error(self, status: int, code: str, message: str) -> web.Response:
        body = {"RequestId": str(uuid.uuid4()).upper(), "HostId": "dysmsapi.aliyuncs.com",
                "Code": code, "Message": message, "Recommend": ""}
        return web.json_response(body, status=status)

    def check_gateway(self, method: str, params: Mapping[str, str]) -> web.Response | None:
        """Signature, key, timestamp and nonce checks; a response when the call is refused."""
        for name in ("AccessKeyId", "Signature", "SignatureNonce", "Timestamp", "Action"):
            if not params.get(name):
                return self.gateway_error(400, f"Missing{name}", f"{name} is mandatory")
        if params.get("SignatureMethod") != "HMAC-SHA1" or params.get("SignatureVersion") != "1.0":
            return self.gateway_error(400, "InvalidSignatureMethod", "unsupported method")
        secret = self.config.access_keys.get(params["AccessKeyId"])
        if secret is None:
            return self.gateway_error(404, "InvalidAccessKeyId.NotFound",
                                       "Specified access key is not found.")
        try:
            stamp = aliyun_signature.parse_timestamp(params["Timestamp"])
        except ValueError:
            return self.gateway_error(400, "InvalidTimeStamp.Format", "bad Timestamp")
        if abs((datetime.now(UTC) - stamp).total_seconds()) > self.config.timestamp_window_s:
            return self.gateway_error(400, "InvalidTimeStamp.Expired", "Timestamp expired")
        if not aliyun_signature.verify(method, params, secret):
            expected = aliyun_signature.string_to_sign(method, params)
            return self.gateway_error(400, "SignatureDoesNotMatch",
                                       f"Specified signature is not matched with our calculation."
                                       f" server string to sign is:{expected}")
        now = time.monotonic()
        if len(self._nonces) > 100_000:
            horizon = now - self.config.timestamp_window_s
            self._nonces = {k: t for k, t in self._nonces.items() if t > horizon}
        if params["SignatureNonce"] in self._nonces:
            return self.gateway_error(400, "SignatureNonceUsed", "nonce already used")
        self._nonces[params["SignatureNonce"]] = now
        if params.get("Version") != "2017-05-25":
            return self.gateway_error(400, "InvalidVersion", "Specified parameter Version is "
                                       "not valid.")
        return None

    def _check_params(self, template: str, values: Any) -> str | None:
        """The business code for a bad TemplateParam object, else None."""
        if not isinstance(values, dict) or not all(isinstance(v, str) for v in values.values()):
            return "isv.INVALID_JSON_PARAM"
        if any(not values.get(name) for name in self.config.templates[template]):
            return "isv.TEMPLATE_MISSING_PARAMETERS"
        for value in values.values():
            if len(value) > self.config.param_max_length:
                return "isv.PARAM_LENGTH_LIMIT"
            if "http://" in value or "https://" in value:
                return "isv.PARAM_NOT_SUPPORT_URL"
        return None

    def _over_limit(self, sign_name: str, template: str, phones: list[str]) -> bool:
        limit = self.config.per_number_daily
        if limit <= 0:
            return False
        horizon = time.time() - 86_400
        for phone in phones:
            sent = self._sends.get(f"{sign_name}|{template}|{phone}")
            if sent and sum(1 for t in sent if t > horizon) >= limit:
                return True
        return False

    def _record(self, sign_name: str, template: str, phones: list[str]) -> None:
        if self.config.per_number_daily <= 0:
            return
        now = time.time()
        for phone in phones:
            self._sends.setdefault(f"{sign_name}|{template}|{phone}", []).append(now)
        if len(self._sends) > self._prune_at:
            # Numbers with nothing in the last 24 h no longer count: forget them, so a
            # long-running simulator stays bounded by one day's distinct numbers.
            horizon = now - 86_400
            self._sends = {k: [t for t in v if t > horizon] for k, v in self._sends.items()
                           if v[-1] > horizon}
            self._prune_at = max(100_000, 2 * len(self._sends))

    def business(self, action: str, params: Mapping[str, str],
                 app: web.Application) -> dict[str, Any]:
        """Run SendSms / SendBatchSms; the JSON body (HTTP 200) either way."""
        request_id = str(uuid.uuid4()).upper()
        stats = app[STATS]

        def fail(code: str, message: str) -> dict[str, Any]:
            stats.error(code)
            return {"RequestId": request_id, "Code": code, "Message": message}

        template = params.get("TemplateCode", "")
        if action == "SendSms":
            phones = params.get("PhoneNumbers", "").split(",") if params.get("PhoneNumbers") else []
            signs = [params.get("SignName", "")] * len(phones)
            try:
                raw = json.loads(params["TemplateParam"]) if params.get("TemplateParam") else {}
            except ValueError:
                return fail("isv.INVALID_JSON_PARAM", "JSON参数不合法，只接受字符串值")
            values: list[Any] = [raw] * len(phones)
            limit = self.config.max_numbers
        else:
            try:
                phones = json.loads(params.get("PhoneNumberJson", "[]"))
                signs = json.loads(params.get("SignNameJson", "[]"))
                values = json.loads(params.get("TemplateParamJson", "[]") or "[]")
            except ValueError:
                return fail("isv.INVALID_JSON_PARAM", "JSON参数不合法，只接受字符串值")
            if not (isinstance(phones, list) and isinstance(signs, list)
                    and isinstance(values, list)) or not len(phones) == len(signs) == len(values):
                return fail("isv.INVALID_PARAMETERS", "参数异常")
            limit = self.config.max_batch_numbers
        if not phones:
            return fail("isv.INVALID_PARAMETERS", "PhoneNumbers is mandatory")
        if len(phones) > limit:
            return fail("isv.MOBILE_COUNT_OVER_LIMIT", "手机号码数量超过限制")
        if not all(isinstance(p, str) and PHONE.match(p) for p in phones):
            return fail("isv.MOBILE_NUMBER_ILLEGAL", "非法手机号")
        if any(s not in self.config.sign_names for s in signs):
            return fail("isv.SMS_SIGNATURE_ILLEGAL", "签名不合法(不存在或被拉黑)")
        if template not in self.config.templates:
            return fail("isv.SMS_TEMPLATE_ILLEGAL", "模板不合法(不存在或被拉黑)")
        checked: dict[str, str | None] = {}
        for value in values:
            key = json.dumps(value, sort_keys=True)
            if key not in checked:
                checked[key] = self._check_params(template, value)
            if checked[key]:
                return fail(str(checked[key]), "模板变量不合法")
        draw, faults = app[RANDOM].random(), faults_of(app)
        if draw < faults.system_error_share:
            return fail("isp.SYSTEM_ERROR", "系统错误")
        if draw < faults.system_error_share + faults.quota_share:
            return fail("isv.DAY_LIMIT_CONTROL", "触发日发送限额")
        if self._over_limit(signs[0], template, phones):
            return fail("isv.BUSINESS_LIMIT_CONTROL",
                        f"触发天级流控Permits:{self.config.per_number_daily}")
        self._record(signs[0], template, phones)
        self._biz_seq += 1
        biz_id = f"{self._biz_seq}^0"
        stats.add("requests_ok")
        stats.add(f"{action}_requests")
        stats.add("recipients", len(phones))
        self._remember(phones, params.get("OutId", ""), template)
        self._count_repeats(phones, params.get("OutId", ""), stats)
        self._schedule_receipts(biz_id, phones, params.get("OutId", ""), app)
        return {"RequestId": request_id, "Code": "OK", "Message": "OK", "BizId": biz_id}

    def _count_repeats(self, phones: list[str], out_id: str, stats: Any) -> None:
        """Count numbers messaged again by the same campaign (``OutId`` up to its first ``:``,
        the dispatcher's campaign id): ``repeats`` must stay 0 whatever crashes."""
        if not out_id:
            return
        campaign = out_id.split(":", 1)[0]
        for phone in phones:
            key = hash((campaign, phone))
            if key in self._messaged:
                stats.add("repeats")
            else:
                self._messaged.add(key)

    def _remember(self, phones: list[str], out_id: str, template: str) -> None:
        stamp = (datetime.now(UTC) + timedelta(hours=8)).strftime("%Y-%m-%d %H:%M:%S")
        self._history.append((stamp, out_id, template, "," + ",".join(phones) + ","))

    def query(self, params: Mapping[str, str], app: web.Application) -> dict[str, Any]:
        """QuerySendDetails: one number's sends on one day (``SendDate`` yyyyMMdd)."""
        request_id = str(uuid.uuid4()).upper()
        phone, day = params.get("PhoneNumber", ""), params.get("SendDate", "")
        if not PHONE.match(phone):
            return {"RequestId": request_id, "Code": "isv.MOBILE_NUMBER_ILLEGAL",
                    "Message": "非法手机号"}
        if len(day) != 8 or not day.isdigit():
            return {"RequestId": request_id, "Code": "isv.INVALID_PARAMETERS",
                    "Message": "SendDate 格式应为 yyyyMMdd"}
        wanted, needle = f"{day[:4]}-{day[4:6]}-{day[6:]}", f",{phone},"
        ok = not address_in_share(phone, faults_of(app).invalid_share, "sms-invalid")
        rows = [{"PhoneNum": phone, "SendStatus": 3 if ok else 2,
                 "ErrCode": "DELIVERED" if ok else self.config.receipt_fail_code,
                 "TemplateCode": template, "Content": "", "SendDate": stamp,
                 "ReceiveDate": stamp, "OutId": out_id}
                for stamp, out_id, template, numbers in reversed(self._history)
                if stamp.startswith(wanted) and needle in numbers]
        return {"RequestId": request_id, "Code": "OK", "Message": "OK",
                "TotalCount": len(rows), "SmsSendDetailDTOs": {"SmsSendDetailDTO": rows[:50]}}

    def _schedule_receipts(self, biz_id: str, phones: list[str], out_id: str,
                           app: web.Application) -> None:
        if not self.config.callback_url:
            return
        faults = faults_of(app)
        beijing = datetime.now(UTC) + timedelta(hours=8)
        stamp = beijing.strftime("%Y-%m-%d %H:%M:%S")
        reports = []
        for phone in phones:
            ok = not address_in_share(phone, faults.invalid_share, "sms-invalid")
            reports.append({
                "phone_number": phone, "send_time": stamp, "report_time": stamp, "success": ok,
                "err_code": "DELIVERED" if ok else self.config.receipt_fail_code,
                "err_msg": "用户接收成功" if ok else "用户接收失败", "sms_size": "1",
                "biz_id": biz_id, "out_id": out_id,
            })
            app[STATS].add("receipts_ok" if ok else "receipts_failed")
        body = json.dumps(reports, ensure_ascii=False).encode()
        self._sender.push(Callback(self.config.callback_url, body, "application/json"))
        if app[RANDOM].random() < faults.duplicate_callback_share:
            app[STATS].add("receipt_batches_duplicated")
            self._sender.push(Callback(self.config.callback_url, body, "application/json"))


SIMULATOR = web.AppKey("sms_simulator", SmsSimulator)


async def rpc_handler(request: web.Request) -> web.Response:
    sim = request.app[SIMULATOR]
    params: dict[str, str] = dict(request.query)
    if request.method == "POST":
        params.update({k: v for k, v in (await request.post()).items() if isinstance(v, str)})
    refused = sim.check_gateway(request.method, params)
    if refused is not None:
        request.app[STATS].error(json.loads(refused.text or "{}").get("Code", "gateway"))
        return refused
    action = params["Action"]
    if action == "QuerySendDetails":
        return web.json_response(sim.query(params, request.app), dumps=_dumps)
    if action not in ("SendSms", "SendBatchSms"):
        return sim.gateway_error(404, "InvalidApi.NotFound", f"Specified api {action} not found")
    return web.json_response(sim.business(action, params, request.app), dumps=_dumps)


def _dumps(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False)


def make_app(config: SmsSimConfig) -> web.Application:
    """The simulator as an aiohttp application (``GET``/``POST /``, ``GET /_sim/stats``)."""
    app = base_app(config.faults)
    sender = CallbackSender(stats=app[STATS])
    app[SIMULATOR] = SmsSimulator(config, sender=sender)
    app.cleanup_ctx.append(sender.context)
    app.router.add_route("GET", "/", rpc_handler)
    app.router.add_route("POST", "/", rpc_handler)
    return app
