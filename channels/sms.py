"""Aliyun SMS (Dysmsapi 2017-05-25) as a ``Channel``.

Messages whose template variables are identical travel together in one ``SendSms`` call (up to
``max_numbers``, same parameters for every number); the rest go per-number in ``SendBatchSms``
(up to ``max_batch_numbers``). Each request is signed once (HMAC-SHA1 RPC v1). SendSms is not
idempotent, so a request is never repeated inside one ``send`` except when the gateway refused
it before doing anything (stale timestamp or reused nonce).
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

import aiohttp
from redis.exceptions import RedisError

from channels import aliyun_signature
from channels.base import Message, RedisClient, SendResult
from channels.errors import ChannelConfigError, ChannelUnavailable
from channels.ratelimit import RateLimiter
from channels.receipts import ReceiptIndex

# Aliyun codes and what each means for the dispatcher (spec §3.1); matched on codes only.
Outcome = Literal["failed_permanent", "failed_retryable", "quota_exhausted", "config"]
Resolution = Literal["sent", "not_sent", "unknown"]

# The account or its setup is wrong: every message would fail the same way.
CONFIG = frozenset({
    "SignatureDoesNotMatch", "InvalidAccessKeyId.NotFound", "InvalidAccessKeyId.Inactive",
    "isv.SMS_TEMPLATE_ILLEGAL", "isv.SMS_SIGNATURE_ILLEGAL", "isv.SMS_SIGNATURE_SCENE_ILLEGAL",
    "isv.SIGN_STATE_ILLEGAL", "isp.RAM_PERMISSION_DENY", "isv.PRODUCT_UN_SUBSCRIPT",
    "isv.PRODUCT_UNSUBSCRIBE", "isv.ACCOUNT_NOT_EXISTS", "isv.ACCOUNT_ABNORMAL",
    "isv.DENY_IP_RANGE", "InvalidApi.NotFound", "InvalidVersion", "InvalidSignatureMethod",
})

QUOTA = frozenset({
    "isv.DAY_LIMIT_CONTROL", "isv.MONTH_LIMIT_CONTROL", "isv.AMOUNT_NOT_ENOUGH",
    "isv.OUT_OF_SERVICE",
})

RETRYABLE = frozenset({
    "isv.BUSINESS_LIMIT_CONTROL", "isp.SYSTEM_ERROR", "Throttling", "Throttling.User",
    "Throttling.Api", "ServiceUnavailable", "InternalError", "InvalidTimeStamp.Expired",
    "SignatureNonceUsed", "timeout", "network",
})

# Codes that one number can cause for a whole multi-number request.
RESEND_ALONE = frozenset({"isv.MOBILE_NUMBER_ILLEGAL", "isv.BUSINESS_LIMIT_CONTROL"})


def classify(code: str) -> Outcome:
    """What a non-OK code means; unknown codes are permanent for the member (never looped)."""
    if code in CONFIG:
        return "config"
    if code in QUOTA:
        return "quota_exhausted"
    if code in RETRYABLE or code.startswith("http_5") or code.startswith("Throttling"):
        return "failed_retryable"
    return "failed_permanent"

log = logging.getLogger(__name__)
FORM = {"Content-Type": "application/x-www-form-urlencoded"}
PHONE = re.compile(r"^(?:\+86|0086|86)?(1[3-9]\d{9})$")


@dataclass(frozen=True)
class SmsConfig:
    """Account, endpoint and limits; every number here is configuration (spec §3.1)."""

    base_url: str
    access_key_id: str
    access_key_secret: str
    sign_name: str
    template_code: str
    max_numbers: int = 1000
    max_batch_numbers: int = 100
    concurrency: int = 8
    timeout_s: float = 10.0
    retry_after_s: float = 60.0  # transient failures
    business_limit_retry_s: float = 3600.0  # isv.BUSINESS_LIMIT_CONTROL (flow control)


@dataclass(frozen=True, slots=True)
class _Request:
    action: str
    indexes: tuple[int, ...]
    phones: tuple[str, ...]
    params: dict[str, str]


class TimeoutLedger:
    """OutIds whose SendSms timed out (``ch:sms:timeout:<OutId>``, kept two days), shared by
    all workers so whichever retries the batch asks QuerySendDetails before resending."""

    def __init__(self, *, redis: RedisClient, ttl_s: int = 2 * 86_400) -> None:
        self._redis = redis
        self._ttl_s = ttl_s

    # Bookkeeping around sends that already happened: a Redis failure here is logged, never
    # turned into a failed send (which the dispatcher would repeat).
    async def mark(self, out_id: str) -> None:
        try:
            await self._redis.set(f"ch:sms:timeout:{out_id}", 1, ex=self._ttl_s)
        except RedisError as exc:
            log.warning("SMS timeout ledger unavailable, a retry may resend: %s", exc)

    async def seen(self, out_id: str) -> bool:
        try:
            return bool(await self._redis.exists(f"ch:sms:timeout:{out_id}"))
        except RedisError as exc:
            log.warning("SMS timeout ledger unavailable: %s", exc)
            return False

    async def clear(self, out_id: str) -> None:
        try:
            await self._redis.delete(f"ch:sms:timeout:{out_id}")
        except RedisError as exc:
            log.warning("SMS timeout ledger unavailable: %s", exc)


def normalize_phone(address: str) -> str | None:
    """The bare 11-digit mainland number, or None when ``address`` is not one."""
    match = PHONE.match(address)
    return match.group(1) if match else None


def _template_param(variables: Any) -> str:
    return json.dumps(dict(variables), ensure_ascii=False, separators=(",", ":"))


class AliyunSmsChannel:
    """``Channel`` over Aliyun SendSms / SendBatchSms."""

    name = "sms"

    def __init__(self, *, config: SmsConfig, session: aiohttp.ClientSession,
                 receipts: ReceiptIndex | None = None,
                 rate: RateLimiter | None = None,
                 timeouts: TimeoutLedger | None = None) -> None:
        self.config = config
        self._rate = rate
        self._timeouts = timeouts
        self.max_batch = config.max_numbers
        self._session = session
        self._receipts = receipts
        self._slots = asyncio.Semaphore(config.concurrency)
        self._timeout = aiohttp.ClientTimeout(total=config.timeout_s)

    def plan(self, messages: Sequence[Message]) -> tuple[list[_Request], dict[int, str]]:
        """Requests for ``messages`` and the indexes refused before sending (bad numbers)."""
        refused: dict[int, str] = {}
        phones: dict[int, str] = {}
        groups: dict[tuple[tuple[str, str], ...], list[int]] = {}
        for i, message in enumerate(messages):
            phone = normalize_phone(message.address)
            if phone is None:
                refused[i] = "isv.MOBILE_NUMBER_ILLEGAL"
                continue
            phones[i] = phone
            # Insertion order is part of the key: cheaper than sorting 1,000 times, and
            # variables built by one campaign share their order.
            groups.setdefault(tuple(message.variables.items()), []).append(i)
        requests: list[_Request] = []
        singles: list[int] = []
        for indexes in groups.values():
            if len(indexes) == 1:
                singles.append(indexes[0])
                continue
            for start in range(0, len(indexes), self.config.max_numbers):
                chunk = indexes[start:start + self.config.max_numbers]
                requests.append(self._send_sms(messages, chunk, phones))
        for start in range(0, len(singles), self.config.max_batch_numbers):
            chunk = singles[start:start + self.config.max_batch_numbers]
            if len(chunk) == 1:
                requests.append(self._send_sms(messages, chunk, phones))
            else:
                requests.append(self._send_batch(messages, chunk, phones))
        return requests, refused

    def _out_id(self, messages: Sequence[Message], indexes: Sequence[int]) -> str:
        # One OutId per request, the same whenever the same members are sent together, so a
        # retried request is recognised in QuerySendDetails and receipts name the request.
        # Aliyun allows < 256 characters.
        # Requests of a campaign start with "<campaign id>:", so QuerySendDetails tells
        # whether a number got this campaign's message whichever request carried it.
        if len(indexes) == 1:
            return messages[indexes[0]].idempotency_key[:200]
        keys = "\n".join(messages[i].idempotency_key for i in indexes)
        digest = hashlib.sha1(keys.encode()).hexdigest()
        campaign = messages[indexes[0]].campaign_id
        return f"{campaign[:200]}:{digest}" if campaign else "qp" + digest

    def _send_sms(self, messages: Sequence[Message], indexes: Sequence[int],
                  phones: dict[int, str]) -> _Request:
        numbers = tuple(phones[i] for i in indexes)
        params = {
            "PhoneNumbers": ",".join(numbers),
            "SignName": self.config.sign_name,
            "TemplateCode": self.config.template_code,
            "TemplateParam": _template_param(messages[indexes[0]].variables),
            "OutId": self._out_id(messages, indexes),
        }
        return _Request("SendSms", tuple(indexes), numbers, params)

    def _send_batch(self, messages: Sequence[Message], indexes: Sequence[int],
                    phones: dict[int, str]) -> _Request:
        numbers = tuple(phones[i] for i in indexes)
        params = {
            "PhoneNumberJson": json.dumps(numbers),
            "SignNameJson": json.dumps([self.config.sign_name] * len(numbers), ensure_ascii=False),
            "TemplateCode": self.config.template_code,
            "TemplateParamJson": "[" + ",".join(
                _template_param(messages[i].variables) for i in indexes) + "]",
            "OutId": self._out_id(messages, indexes),
        }
        return _Request("SendBatchSms", tuple(indexes), numbers, params)

    def signed(self, action: str, params: dict[str, str]) -> dict[str, str]:
        """``params`` with the common parameters and ``Signature`` added, for a POST."""
        full = aliyun_signature.common_params(
            access_key_id=self.config.access_key_id, action=action, version="2017-05-25")
        full.update(params)
        full["Signature"] = aliyun_signature.sign("POST", full, self.config.access_key_secret)
        return full

    def signed_body(self, action: str, params: dict[str, str]) -> bytes:
        """The form-encoded, signed POST body (what ``signed`` gives, encoded once)."""
        full = aliyun_signature.common_params(
            access_key_id=self.config.access_key_id, action=action, version="2017-05-25")
        full.update(params)
        return aliyun_signature.signed_form(full, self.config.access_key_secret)

    async def _post(self, request: _Request) -> tuple[int, dict[str, Any]]:
        """One signed POST; (HTTP status, JSON body). Gateway refusals about a stale timestamp
        or a reused nonce are retried once with fresh values (nothing was sent)."""
        async with self._slots:
            if self._rate is not None:
                await self._rate.acquire(1)
            for attempt in range(2):
                body = self.signed_body(request.action, request.params)
                async with self._session.post(self.config.base_url, data=body,
                                              headers=FORM, timeout=self._timeout) as resp:
                    status = resp.status
                    try:
                        payload = await resp.json(content_type=None)
                    except ValueError:
                        payload = {}
                if not isinstance(payload, dict):
                    payload = {}
                if attempt == 0 and payload.get("Code") in (
                        "InvalidTimeStamp.Expired", "SignatureNonceUsed"):
                    continue
                return status, payload
        raise AssertionError("unreachable")

    async def _run(self, request: _Request, messages: Sequence[Message],
                   results: list[SendResult | None], *, may_split: bool) -> bool:
        """Send one request and fill ``results``; True when the provider was reached."""
        now = datetime.now(UTC)
        out_id = request.params["OutId"]
        if self._receipts is not None:
            # Recorded before sending, under OutId: a receipt for a request whose answer was
            # lost (timeout) still finds its members.
            pack = self._receipts.pack
            await self._receipts.remember_packed({out_id: "".join([
                pack(phone, messages[i].member_id, messages[i].campaign_id,
                     messages[i].coupon_code)
                for i, phone in zip(request.indexes, request.phones, strict=True)])})
        if self._timeouts is not None and await self._timeouts.seen(out_id) \
                and await self._went_out(request):
            # SendSms is not idempotent: an earlier attempt that timed out was delivered.
            for i in request.indexes:
                results[i] = SendResult(messages[i].member_id, "sent", provider_id=out_id)
            await self._timeouts.clear(out_id)
            return True
        try:
            status, payload = await self._post(request)
        except (TimeoutError, aiohttp.ClientError, OSError) as exc:
            # A timeout may hide a send that went through: the OutId is noted so the retry
            # asks QuerySendDetails first; the code says which it was.
            code = "timeout" if isinstance(exc, asyncio.TimeoutError) else "network"
            if code == "timeout" and self._timeouts is not None:
                await self._timeouts.mark(out_id)
            retry = now + timedelta(seconds=self.config.retry_after_s)
            for i in request.indexes:
                results[i] = SendResult(messages[i].member_id, "failed_retryable", code=code,
                                        retry_at=retry)
            return code == "timeout"  # possibly accepted: never report "nothing happened"
        code = str(payload.get("Code") or f"http_{status}")
        if status >= 500:
            code = f"http_{status}"
        if code == "OK":
            biz_id = str(payload.get("BizId", ""))
            for i in request.indexes:
                results[i] = SendResult(messages[i].member_id, "sent", provider_id=biz_id)
            return True
        if may_split and code in RESEND_ALONE and len(request.indexes) > 1:
            # One bad or flow-limited number refuses the whole request: send each alone.
            singles = [self._send_sms(messages, [i], dict(zip(request.indexes, request.phones,
                                                               strict=True)))
                       for i in request.indexes]
            await asyncio.gather(*(self._run(s, messages, results, may_split=False)
                                   for s in singles))
            return True
        status_name = classify(code)
        if status_name == "config":
            # The provider's Message can quote the request (phone numbers): only the code.
            raise ChannelConfigError(f"Aliyun SMS refused the account setup: {code}; check "
                                     "SMS_ACCESS_KEY_ID/SECRET, SMS_SIGN_NAME and "
                                     "SMS_TEMPLATE_CODE", code=code)
        delay = (self.config.business_limit_retry_s if code == "isv.BUSINESS_LIMIT_CONTROL"
                 else self.config.retry_after_s)
        for i in request.indexes:
            results[i] = SendResult(
                messages[i].member_id, status_name, code=code,
                retry_at=now + timedelta(seconds=delay) if status_name == "failed_retryable"
                else None)
        return status < 500

    async def _went_out(self, request: _Request) -> bool:
        """Whether QuerySendDetails shows this request's OutId for its first number, today or
        yesterday (merchant days in Beijing time, as Aliyun keeps them)."""
        today = datetime.now(UTC) + timedelta(hours=8)
        for day in (today, today - timedelta(days=1)):
            query = _Request("QuerySendDetails", (), (), {
                "PhoneNumber": request.phones[0], "SendDate": day.strftime("%Y%m%d"),
                "PageSize": "50", "CurrentPage": "1"})
            try:
                _, payload = await self._post(query)
            except (TimeoutError, aiohttp.ClientError, OSError):
                return False
            rows = (payload.get("SmsSendDetailDTOs") or {}).get("SmsSendDetailDTO") or []
            if any(isinstance(r, dict) and r.get("OutId") == request.params["OutId"]
                   for r in rows):
                return True
        return False

    async def resolve(self, messages: Sequence[Message]) -> list[Resolution]:
        """Whether each message's campaign already reached its number (a call that may have
        left before a crash), from ``QuerySendDetails`` by phone and day (today and yesterday,
        Beijing time) matched on the campaign's ``OutId`` prefix: ``sent``, ``not_sent`` (the
        provider has no such send: sending is safe) or ``unknown`` (the query failed)."""
        async def one(message: Message) -> Resolution:
            phone = normalize_phone(message.address)
            if phone is None or not message.campaign_id:
                return "unknown"
            prefix = f"{message.campaign_id}:"
            today = datetime.now(UTC) + timedelta(hours=8)
            for day in (today, today - timedelta(days=1)):
                query = _Request("QuerySendDetails", (), (), {
                    "PhoneNumber": phone, "SendDate": day.strftime("%Y%m%d"),
                    "PageSize": "50", "CurrentPage": "1"})
                try:
                    status, payload = await self._post(query)
                except (TimeoutError, aiohttp.ClientError, OSError):
                    return "unknown"
                if status != 200 or payload.get("Code") != "OK":
                    return "unknown"
                rows = (payload.get("SmsSendDetailDTOs") or {}).get("SmsSendDetailDTO") or []
                if any(isinstance(r, dict) and str(r.get("OutId", "")).startswith(prefix)
                       for r in rows):
                    return "sent"
            return "not_sent"

        return list(await asyncio.gather(*(one(m) for m in messages)))

    async def send(self, messages: Sequence[Message]) -> list[SendResult]:
        """Send ``messages``; one result per message, in order."""
        requests, refused = self.plan(messages)
        results: list[SendResult | None] = [None] * len(messages)
        for i, code in refused.items():
            results[i] = SendResult(messages[i].member_id, "failed_permanent", code=code)
        reached = await asyncio.gather(*(self._run(r, messages, results, may_split=True)
                                         for r in requests))
        if requests and not any(reached):
            raise ChannelUnavailable("Aliyun SMS could not be reached (network errors or 5xx "
                                     "on every request); nothing was accepted, retry the batch")
        return [r for r in results if r is not None]
