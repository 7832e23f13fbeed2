"""WeChat Official Account channels: template messages (one member per call, ``client_msg_id``)
and mass send of a ``wxcard`` to 2..10,000 openids (``clientmsgid``).

Both share the token manager and its rule: on 40001/40014/42001 get a newer token and retry the
same request once. Codes are matched as numbers, never on ``errmsg`` (its suffix changes).
Template receipts (``TEMPLATESENDJOBFINISH``) name only ``MsgID``; the index stores msgid ->
member under ``tpl:<msgid // 4096>`` so one batch touches a handful of Redis keys.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import aiohttp
import msgspec

from channels.base import Message, SendResult, SendStatus
from channels.content import DEFAULT_WECHAT, WeChatTemplate
from channels.errors import ChannelConfigError, ChannelUnavailable
from channels.ratelimit import RateLimiter
from channels.receipts import ReceiptIndex, Recipient
from channels.transport import Poster, SessionPoster
from channels.wechat_token import TOKEN_CODES, TokenManager

PERMANENT = frozenset({40003, 43004, 43019, 43101, 45015, 47003, 40130, 41028, 41029})
QUOTA = frozenset({45009, 45028, 45047})
CONFIG = frozenset({40013, 40037, 40073, 41001, 48001, 40125, 40164, 47001})
RETRY_AFTER_S = {-1: 30.0, 43117: 60.0, 45011: 60.0, 45066: 10.0, 9500002: 300.0}
TEMPLATE_BUCKET = 4096


@dataclass(frozen=True)
class WeChatConfig:
    base_url: str
    template: WeChatTemplate = DEFAULT_WECHAT
    card_id: str = ""
    template_batch: int = 500  # messages per ``send`` call (one HTTP call each)
    mass_batch: int = 10_000
    mass_min: int = 2
    concurrency: int = 64
    chunk: int = 500  # messages per rate-limit reservation
    timeout_s: float = 10.0
    retry_after_s: float = 60.0


def _encode(payload: Any) -> bytes:
    """JSON with Chinese kept as UTF-8 (msgspec: several times cheaper than ``json``)."""
    return msgspec.json.encode(payload)


def _decode(raw: bytes) -> Any:
    try:
        return msgspec.json.decode(raw)
    except msgspec.DecodeError as exc:
        raise ValueError(f"reply is not JSON: {exc}") from exc


def classify(code: int) -> SendStatus | None:
    """The status for a non-zero errcode; None for configuration errors (raise)."""
    if code in CONFIG:
        return None
    if code in QUOTA:
        return "quota_exhausted"
    if code in PERMANENT:
        return "failed_permanent"
    return "failed_retryable"


class _WeChatBase:
    name = "wechat"
    def __init__(self, *, config: WeChatConfig, session: aiohttp.ClientSession,
                 tokens: TokenManager, receipts: ReceiptIndex | None = None,
                 rate: RateLimiter | None = None, poster: Poster | None = None) -> None:
        self.config = config
        self._poster = poster or SessionPoster(session, timeout_s=config.timeout_s)
        self.max_batch = config.mass_batch if self.name == "wechat_mass" else config.template_batch
        self._tokens = tokens
        self._receipts = receipts
        self._rate = rate

    async def _call(self, path: str, body: bytes) -> dict[str, Any]:
        """POST ``body``; on a token errcode refresh and retry exactly once. Raises aiohttp /
        OS errors and ``TimeoutError`` for the caller to classify."""
        token = await self._tokens.get()
        for attempt in range(2):
            status, raw = await self._poster.post(
                f"{self.config.base_url}{path}?access_token={token}", body, "application/json")
            if status >= 500:
                return {"errcode": f"http_{status}"}
            payload = _decode(raw)
            if not isinstance(payload, dict):
                return {"errcode": "bad_reply"}
            if attempt == 0 and payload.get("errcode") in TOKEN_CODES:
                token = await self._tokens.invalidate(token)
                continue
            return payload
        raise AssertionError("unreachable")

    def _result(self, message: Message, payload: dict[str, Any], id_key: str) -> SendResult:
        code = payload.get("errcode", 0)
        if code == 0:
            return SendResult(message.member_id, "sent", provider_id=str(payload.get(id_key)))
        retry = datetime.now(UTC) + timedelta(seconds=self.config.retry_after_s)
        if not isinstance(code, int):
            return SendResult(message.member_id, "failed_retryable", code=str(code),
                              retry_at=retry)
        status = classify(code)
        if status is None:
            raise ChannelConfigError(f"WeChat refused the account setup: errcode {code}; check "
                                     "the WeChat settings (appid, template, card)")
        if status == "failed_retryable":
            retry = datetime.now(UTC) + timedelta(
                seconds=RETRY_AFTER_S.get(code, self.config.retry_after_s))
        return SendResult(message.member_id, status, code=str(code),
                          retry_at=retry if status == "failed_retryable" else None)


def _unreached(message: Message, exc: BaseException, retry_s: float) -> SendResult:
    code = "timeout" if isinstance(exc, TimeoutError) else "network"
    return SendResult(message.member_id, "failed_retryable", code=code,
                      retry_at=datetime.now(UTC) + timedelta(seconds=retry_s))


class WeChatTemplateChannel(_WeChatBase):
    """Template messages, one call per member, up to ``concurrency`` in flight."""

    name = "wechat"

    def body(self, message: Message) -> bytes:
        t = self.config.template
        payload: dict[str, Any] = {"touser": message.address, "template_id": t.template_id,
                                   "client_msg_id": message.idempotency_key[:64],
                                   "data": t.data(message.variables)}
        link = message.variables.get(t.url_variable)
        if link:
            payload["url"] = link
        return _encode(payload)

    async def send(self, messages: Sequence[Message]) -> list[SendResult]:
        """Send ``messages``; one result per message, in order."""
        reached = False
        results: list[SendResult | None] = [None] * len(messages)

        async def worker(indexes: Iterator[int]) -> None:
            # A few workers share one iterator instead of one task per message: task
            # creation would be a fifth of the per-message CPU budget.
            nonlocal reached
            for i in indexes:
                message = messages[i]
                try:
                    payload = await self._call("/cgi-bin/message/template/send",
                                               self.body(message))
                except (TimeoutError, aiohttp.ClientError, OSError, ValueError) as exc:
                    reached = reached or isinstance(exc, TimeoutError)
                    results[i] = _unreached(message, exc, self.config.retry_after_s)
                    continue
                except ChannelUnavailable:  # no token now; client_msg_id makes a retry safe
                    results[i] = SendResult(message.member_id, "failed_retryable",
                                            code="token_unavailable",
                                            retry_at=datetime.now(UTC) + timedelta(
                                                seconds=self.config.retry_after_s))
                    continue
                reached = reached or not str(payload.get("errcode", 0)).startswith("http_")
                results[i] = self._result(message, payload, "msgid")

        for start in range(0, len(messages), self.config.chunk):
            stop = min(start + self.config.chunk, len(messages))
            if self._rate is not None:
                await self._rate.acquire(stop - start)
            shared = iter(range(start, stop))
            await asyncio.gather(*(worker(shared)
                                   for _ in range(min(self.config.concurrency, stop - start))))
        if messages and not reached:
            raise ChannelUnavailable("WeChat could not be reached (network errors or 5xx on "
                                     "every call); nothing was accepted, retry the batch")
        done = [r for r in results if r is not None]
        if self._receipts is not None:
            await self._receipts.remember_rows(
                (f"tpl:{int(r.provider_id) // TEMPLATE_BUCKET}", r.provider_id, m)
                for m, r in zip(messages, done, strict=True) if r.status == "sent")
        return done


class WeChatMassCardChannel(_WeChatBase):
    """One mass/send of the campaign's ``wxcard`` per batch of 2..10,000 openids."""

    name = "wechat_mass"

    @staticmethod
    def clientmsgid(messages: Sequence[Message]) -> str:
        """Stable for the same batch (so a retried batch is recognised), ≤ 64 bytes."""
        digest = hashlib.sha1("\n".join(m.idempotency_key for m in messages).encode())
        return f"qp{digest.hexdigest()}"

    async def send(self, messages: Sequence[Message]) -> list[SendResult]:
        """Send the card to every member of ``messages`` in one job."""
        if len(messages) < self.config.mass_min:
            # The platform refuses jobs under two openids: let the router pick another channel.
            return [SendResult(m.member_id, "failed_permanent", code="40130") for m in messages]
        body = json.dumps({"touser": [m.address for m in messages], "msgtype": "wxcard",
                           "wxcard": {"card_id": self.config.card_id},
                           "clientmsgid": self.clientmsgid(messages), "send_ignore_reprint": 0},
                          separators=(",", ":")).encode()
        if self._rate is not None:
            await self._rate.acquire(1)
        try:
            payload = await self._call("/cgi-bin/message/mass/send", body)
        except (aiohttp.ClientError, OSError, ValueError) as exc:
            raise ChannelUnavailable(f"WeChat mass send unreachable: {exc!r}") from exc
        except TimeoutError:
            # clientmsgid makes the retry safe: a job that did start answers 45065.
            return [_unreached(m, TimeoutError(), self.config.retry_after_s) for m in messages]
        if str(payload.get("errcode")).startswith("http_"):
            raise ChannelUnavailable(f"WeChat mass send answered {payload['errcode']}")
        if payload.get("errcode") == 45065 and payload.get("msg_id"):
            payload = {"errcode": 0, "msg_id": payload["msg_id"]}  # this job already went out
        results = [self._result(m, payload, "msg_id") for m in messages]
        if self._receipts is not None and results[0].status == "sent":
            await self._receipts.remember(f"mass:{results[0].provider_id}", [
                (m.address, Recipient(m.member_id, m.campaign_id, m.coupon_code))
                for m in messages])
        return results
