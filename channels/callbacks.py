"""Delivery callbacks from the providers turned into ``delivered`` / ``failed`` events.

Routes (mount them with ``add_routes`` on any aiohttp app, or serve ``make_app`` alone):

- ``POST /callbacks/sms``: Aliyun ``SmsReport`` JSON array; answers ``{"code":0,...}``.
- ``GET|POST /callbacks/wechat``: server-URL verification (``echostr``) and the XML event
  pushes ``TEMPLATESENDJOBFINISH`` / ``MASSSENDJOBFINISH``, signature checked first.
- ``POST /callbacks/alipay``: RSA2-signed async notification; answers ``success``.

Receipts repeat (at-least-once delivery, SMS receipts are not idempotent): each one *takes* its
entry from the ``ReceiptIndex``, so the second copy finds it taken and emits nothing. Event ids
are deterministic per (type, campaign, member, channel) as well, for the analytics side. A
receipt whose send is not recorded (yet: it can overtake the reply that names its id) is
refused with 503 after the others of its request are stored, so the provider pushes it again
(WeChat 3 attempts, Alipay 8 within 25 h, Aliyun after 1, 5 and 10 minutes).
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import xml.etree.ElementTree as ET
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any
from zoneinfo import ZoneInfo

from aiohttp import web

from analytics.events import Event, EventSink
from channels.alipay_signature import PublicKey, rsa2_verify, sign_content
from channels.receipts import UNKNOWN, ReceiptIndex, Recipient, Taken, voucher_bucket
from channels.wechat import TEMPLATE_BUCKET

BEIJING = ZoneInfo("Asia/Shanghai")


# WeChat server-URL pushes (spec §1.8): signature = sha1(sorted [token, timestamp, nonce]);
# shared with the simulator, which signs and builds them.

def push_signature(token: str, timestamp: str, nonce: str) -> str:
    return hashlib.sha1("".join(sorted((token, timestamp, nonce))).encode()).hexdigest()


def verify_push(token: str, query: Mapping[str, str]) -> bool:
    """True when ``query`` carries a valid ``signature`` for ``timestamp`` and ``nonce``."""
    expected = push_signature(token, query.get("timestamp", ""), query.get("nonce", ""))
    return hmac.compare_digest(expected, query.get("signature", ""))


def build_event(fields: Mapping[str, str | int]) -> bytes:
    """An ``<xml>`` body; strings in CDATA as the platform sends them, numbers bare."""
    parts = ["<xml>"]
    for name, value in fields.items():
        if isinstance(value, int):
            parts.append(f"<{name}>{value}</{name}>")
        else:
            safe = value.replace("]]>", "]]]]><![CDATA[>")
            parts.append(f"<{name}><![CDATA[{safe}]]></{name}>")
    parts.append("</xml>")
    return "".join(parts).encode()


def parse_event(body: bytes) -> dict[str, str]:
    """The top-level fields of an event body; raises ``ValueError`` when it is not XML."""
    try:
        root = ET.fromstring(body)
    except ET.ParseError as exc:
        raise ValueError(f"not an XML event: {exc}") from exc
    if root.tag != "xml":
        raise ValueError("event root element must be <xml>")
    return {child.tag: (child.text or "") for child in root}


@dataclass
class CallbackReceiver:
    """Turns callbacks into events for ``sink``; one instance per process."""

    sink: EventSink
    merchant_id: str
    sms_index: ReceiptIndex
    wechat_index: ReceiptIndex
    alipay_index: ReceiptIndex
    wechat_token: str
    alipay_public: PublicKey | None = None
    # Events of the requests that arrive within this many seconds leave in one stream entry:
    # an Alipay notify names one voucher, and one stream append per notify was most of the
    # receiver's CPU and Redis's. Each request is answered only once its events are stored.
    coalesce_s: float = 0.002
    _pending: tuple[list[Event], asyncio.Future[None]] | None = field(
        default=None, init=False, repr=False)
    # Alipay vouchers whose notifies arrived within ``coalesce_s``, by receipt bucket: taken
    # in one script call per bucket (vouchers issued together share one) instead of one each.
    _vouchers: dict[str, list[tuple[str, asyncio.Future[Taken]]]] | None = field(
        default=None, init=False, repr=False)
    _taking: set[asyncio.Task[None]] = field(default_factory=set, init=False, repr=False)

    async def publish(self, events: list[Event]) -> None:
        """Store ``events`` (with those of the requests arriving meanwhile); raises what
        the sink raised, so the request fails and the provider pushes it again."""
        if not events:
            return
        if self._pending is None:
            loop = asyncio.get_running_loop()
            self._pending = ([], loop.create_future())
            loop.call_later(self.coalesce_s, self._flush)
        batch, stored = self._pending
        batch.extend(events)
        # Shielded: a request whose client went away must not cancel the others' wait.
        await asyncio.shield(stored)

    def _flush(self) -> None:
        assert self._pending is not None
        batch, stored = self._pending
        self._pending = None
        try:
            self.sink.emit(batch)
        except Exception as exc:  # every waiting request fails with it
            stored.set_exception(exc)
            stored.exception()  # retrieved here too: a waiter may have gone away
            return
        stored.set_result(None)

    async def _take_voucher(self, voucher_id: str) -> Taken:
        """Take ``voucher_id``'s receipt, with those of the notifies arriving meanwhile; a
        repeated notify finds nothing (one take per voucher, even in the same call)."""
        loop = asyncio.get_running_loop()
        if self._vouchers is None:
            self._vouchers = {}
            loop.call_later(self.coalesce_s, self._start_taking)
        taken: asyncio.Future[Taken] = loop.create_future()
        self._vouchers.setdefault(voucher_bucket(voucher_id), []).append((voucher_id, taken))
        return await asyncio.shield(taken)

    def _start_taking(self) -> None:
        vouchers, self._vouchers = self._vouchers or {}, None
        task = asyncio.get_running_loop().create_task(self._take_buckets(vouchers))
        self._taking.add(task)
        task.add_done_callback(self._taking.discard)

    async def _take_buckets(
        self, vouchers: dict[str, list[tuple[str, asyncio.Future[Taken]]]],
    ) -> None:
        async def bucket(key: str, waiting: list[tuple[str, asyncio.Future[Taken]]]) -> None:
            try:
                found = await self.alipay_index.take(key, [v for v, _ in waiting])
            except Exception as exc:  # every notify of the bucket fails with it
                for _, taken in waiting:
                    taken.set_exception(exc)
                    taken.exception()  # retrieved here too: a waiter may have gone away
                return
            for (_, taken), who in zip(waiting, found, strict=True):
                taken.set_result(who)

        await asyncio.gather(*(bucket(k, w) for k, w in vouchers.items()))

    def _event(self, kind: str, channel: str, who: Recipient, reason: str,
               ts: datetime | None = None) -> Event:
        return Event(event_id=f"{kind}:{who.campaign_id}:{who.member_id}:{channel}",
                     event_type=kind, merchant_id=self.merchant_id,
                     campaign_id=who.campaign_id, member_id=who.member_id,
                     coupon_code=who.coupon_code, channel=channel, reason=reason,
                     ts=ts or datetime.now(UTC))

    async def sms_reports(self, reports: Sequence[dict[str, Any]]) -> tuple[list[Event], bool]:
        """The events of a report batch, and whether some report's send is not known (yet)."""
        # The client indexes a request under its OutId (known before the answer, so it also
        # covers requests whose answer timed out); BizId only for reports without one.
        by_request: dict[str, list[dict[str, Any]]] = {}
        for report in reports:
            key = str(report.get("out_id") or report["biz_id"])
            by_request.setdefault(key, []).append(report)
        events, later = [], False
        for key, items in by_request.items():
            found = await self.sms_index.take(key, [str(r["phone_number"]) for r in items])
            for report, who in zip(items, found, strict=True):
                if not isinstance(who, Recipient):
                    later = later or who == UNKNOWN  # TAKEN: a repeated receipt
                    continue
                ok = report["success"] is True
                ts = _report_time(str(report.get("report_time")))
                events.append(self._event("delivered" if ok else "failed", "sms", who,
                                          "" if ok else str(report.get("err_code", "")), ts))
        return events, later

    async def wechat_event(self, fields: dict[str, str]) -> tuple[list[Event], bool]:
        """The events of a job-finished push, and whether its send is not known (yet)."""
        kind, msg_id = fields.get("Event", ""), fields.get("MsgID", "")
        if not msg_id.isdigit():
            return [], False
        if kind == "TEMPLATESENDJOBFINISH":
            found = await self.wechat_index.take(f"tpl:{int(msg_id) // TEMPLATE_BUCKET}",
                                                 [msg_id])
            who, status = found[0], fields.get("Status", "")
            if not isinstance(who, Recipient):
                return [], who == UNKNOWN
            ok = status == "success"
            return [self._event("delivered" if ok else "failed", "wechat", who,
                                "" if ok else status)], False
        if kind == "MASSSENDJOBFINISH":
            rows = await self.wechat_index.take_all(f"mass:{msg_id}")
            if rows is None:
                return [], True
            errors = fields.get("ErrorCount", "0")
            # The job reports counts, not members: with errors, who failed is unknown, so the
            # events say so in ``reason`` rather than guessing.
            reason = "" if errors in ("", "0") else (
                f"mass:{fields.get('SentCount', '?')}/{fields.get('TotalCount', '?')}")
            ok = fields.get("Status", "").startswith("send success")
            return [self._event("delivered" if ok else "failed", "wechat_mass", who,
                                reason if ok else fields.get("Status", ""))
                    for _, who in rows], False
        return [], False

    async def alipay_notify(self, params: dict[str, str]) -> tuple[list[Event], bool]:
        """The events of a voucher notify, and whether its send is not known (yet)."""
        voucher_id = params.get("voucher_id", "")
        if not voucher_id:
            return [], False
        who = await self._take_voucher(voucher_id)
        if not isinstance(who, Recipient):
            return [], who == UNKNOWN
        ok = params.get("status", "SUCCESS") == "SUCCESS"
        return [self._event("delivered" if ok else "failed", "alipay", who,
                            "" if ok else params.get("status", ""))], False


@lru_cache(maxsize=256)  # a push's reports share a few seconds: strptime was 7 % of the receiver
def _report_time(text: str) -> datetime | None:
    """An SmsReport's ``report_time`` (Beijing time, ``yyyy-MM-dd HH:mm:ss``), or None."""
    try:
        return datetime.strptime(text, "%Y-%m-%d %H:%M:%S").replace(tzinfo=BEIJING)
    except ValueError:
        return None


RECEIVER = web.AppKey("callback_receiver", CallbackReceiver)


def _bad(field: str, problem: str) -> web.Response:
    return web.json_response({"error": problem, "field": field}, status=400)


def _later() -> web.Response:
    # not "success": the provider pushes it again, by when its send's record is written
    return web.json_response({"code": 1, "msg": "receipt for a send not recorded yet; push "
                              "it again later"}, status=503)


async def sms_handler(request: web.Request) -> web.Response:
    try:
        body = await request.json()
    except ValueError:
        return _bad("body", "expected a JSON array of SmsReport objects")
    if not isinstance(body, list):
        return _bad("body", "expected a JSON array of SmsReport objects")
    for i, report in enumerate(body):
        if not isinstance(report, dict):
            return _bad(f"[{i}]", "expected an object")
        for name in ("biz_id", "phone_number", "success"):
            if name not in report:
                return _bad(f"[{i}].{name}", "missing")
    receiver = request.app[RECEIVER]
    events, later = await receiver.sms_reports(body)
    await receiver.publish(events)
    return _later() if later else web.json_response({"code": 0, "msg": "接收成功"})


async def wechat_handler(request: web.Request) -> web.StreamResponse:
    receiver = request.app[RECEIVER]
    if not verify_push(receiver.wechat_token, request.query):
        return web.json_response({"error": "signature does not match", "field": "signature"},
                                 status=403)
    if request.method == "GET":
        return web.Response(text=request.query.get("echostr", ""))
    try:
        fields = parse_event(await request.read())
    except ValueError as exc:
        return _bad("body", str(exc))
    events, later = await receiver.wechat_event(fields)
    await receiver.publish(events)
    return _later() if later else web.Response(text="success")


async def alipay_handler(request: web.Request) -> web.Response:
    receiver = request.app[RECEIVER]
    params = {k: v for k, v in (await request.post()).items() if isinstance(v, str)}
    if receiver.alipay_public is None or not params.get("sign") or not rsa2_verify(
            receiver.alipay_public, sign_content(params, exclude=("sign", "sign_type")),
            params["sign"]):
        return web.json_response({"error": "signature does not match", "field": "sign"},
                                 status=400)
    events, later = await receiver.alipay_notify(params)
    await receiver.publish(events)
    return _later() if later else web.Response(text="success")


def add_routes(app: web.Application, receiver: CallbackReceiver) -> None:
    """Mount the callback routes on ``app`` (e.g. the dispatcher's API application)."""
    app[RECEIVER] = receiver
    app.router.add_post("/callbacks/sms", sms_handler)
    app.router.add_get("/callbacks/wechat", wechat_handler)
    app.router.add_post("/callbacks/wechat", wechat_handler)
    app.router.add_post("/callbacks/alipay", alipay_handler)


def make_app(receiver: CallbackReceiver) -> web.Application:
    app = web.Application()
    add_routes(app, receiver)
    return app
