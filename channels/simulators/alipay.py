"""A strict Alipay OpenAPI gateway simulator (``/gateway.do``): RSA2 request verification,
``alipay.marketing.voucher.send`` and ``alipay.marketing.campaign.cash.trigger``, signed
responses and signed async notifications.

Query string and form body are merged before verifying, as the official SDK splits them.
Errors follow spec §2.4: 40001 ``isv.missing-*``, 40002 ``isv.invalid-*`` (signature, app id,
timestamp, method), 40004 business failures with API-specific ``sub_code`` (configurable, the
documented ones are partly unverified), 20000 ``isp.unknow-error``. ``out_biz_no`` is idempotent:
the same value returns the original result (``repeat_trigger_flag="true"`` for cash).
"""

from __future__ import annotations

import asyncio
import json
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlencode

from aiohttp import web

from channels.alipay_signature import (
    PrivateKey,
    PublicKey,
    rsa2_sign,
    rsa2_verify,
    sign_content,
    signed_response,
)
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

VOUCHER = "alipay.marketing.voucher.send"
CASH = "alipay.marketing.campaign.cash.trigger"
REQUIRED = {"app_id": "isv.missing-app-id", "method": "isv.missing-method",
            "sign_type": "isv.missing-signature-type", "sign": "isv.missing-signature",
            "timestamp": "isv.missing-timestamp", "version": "isv.missing-version"}


@dataclass(frozen=True)
class AlipaySimConfig:
    apps: Mapping[str, PublicKey]  # app_id -> the app's public key
    alipay_private_key: PrivateKey
    voucher_templates: frozenset[str]
    crowd_nos: frozenset[str]
    callback_url: str = ""
    timestamp_window_s: float = 900.0
    voucher_stock: int = 1_000_000
    user_not_exist_sub_code: str = "unknown-sub-code"  # observed with sub_msg CIF_USER_NOT_EXIST
    stock_sub_code: str = "VOUCHER_STOCK_NOT_ENOUGH"  # [M] API-specific, configurable
    notify_type: str = "voucher_send_notify"  # [M] configurable
    faults: Faults = field(default_factory=Faults)


class AlipaySimulator:
    def __init__(self, config: AlipaySimConfig, *, sender: CallbackSender) -> None:
        self.config = config
        self._sender = sender
        self._done: dict[tuple[str, str], tuple[str, dict[str, Any]]] = {}
        self._stock = config.voucher_stock
        self._seq = 2026110100000000
        self._notifies: list[dict[str, str]] = []

    def gateway(self, params: Mapping[str, str],
                app: web.Application) -> tuple[str, dict[str, Any]]:
        """(method for the response key, reply payload, unsigned) for one call; a voucher sent
        leaves its notify in ``take_notifies``. ``sign`` signs both, off the event loop."""
        method = params.get("method", "")
        for name, sub_code in REQUIRED.items():
            if not params.get(name):
                return self._reply(method, _error("40001", "Missing Required Arguments",
                                                  sub_code), app)
        public_key = self.config.apps.get(params["app_id"])
        if public_key is None:
            return self._reply(method, _error("40002", "Invalid Arguments",
                                              "isv.invalid-app-id"), app)
        checks = (("sign_type", "RSA2", "isv.invalid-signature-type"),
                  ("version", "1.0", "isv.invalid-version"),
                  ("charset", "utf-8", "isv.invalid-charset"),
                  ("format", "JSON", "isv.invalid-format"))
        for name, expected, sub_code in checks:
            if params.get(name, expected).lower() != expected.lower():
                return self._reply(method, _error("40002", "Invalid Arguments", sub_code), app)
        try:
            stamp = datetime.strptime(params["timestamp"], "%Y-%m-%d %H:%M:%S")
        except ValueError:
            return self._reply(method, _error("40002", "Invalid Arguments",
                                              "isv.invalid-timestamp"), app)
        beijing_now = datetime.now(UTC).replace(tzinfo=None) + timedelta(hours=8)
        if abs((beijing_now - stamp).total_seconds()) > self.config.timestamp_window_s:
            return self._reply(method, _error("40002", "Invalid Arguments",
                                              "isv.invalid-timestamp"), app)
        if not rsa2_verify(public_key, sign_content(params), params["sign"]):
            return self._reply(method, _error("40002", "Invalid Arguments",
                                              "isv.invalid-signature", "验签出错"), app)
        if method not in (VOUCHER, CASH):
            return self._reply("", _error("40002", "Invalid Arguments",
                                          "isv.invalid-method"), app)
        try:
            biz = json.loads(params.get("biz_content", ""))
        except ValueError:
            biz = None
        if not isinstance(biz, dict):
            return self._reply(method, _error("40002", "Invalid Arguments",
                                              "isv.invalid-biz-content"), app)
        if app[RANDOM].random() < faults_of(app).system_error_share:
            return self._reply(method, _error("20000", "Service Currently Unavailable",
                                              "isp.unknow-error", "系统繁忙"), app)
        result = self._voucher(biz, app) if method == VOUCHER else self._cash(biz, app)
        return self._reply(method, result, app)

    def _user(self, biz: Mapping[str, Any]) -> str:
        return str(biz.get("user_id") or biz.get("login_id") or biz.get("open_id") or "")

    def _repeat(self, method: str, biz: Mapping[str, Any]) -> dict[str, Any] | None:
        seen = self._done.get((method, str(biz.get("out_biz_no", ""))))
        if seen is None:
            return None
        fingerprint, result = seen
        if fingerprint != json.dumps(biz, sort_keys=True):
            return _error("40004", "Business Failed", "OUT_BIZ_NO_REPEATED",
                          "外部业务号重复且参数不一致")
        return result

    def _voucher(self, biz: Mapping[str, Any], app: web.Application) -> dict[str, Any]:
        stats, faults = app[STATS], faults_of(app)
        out_biz_no, user = str(biz.get("out_biz_no", "")), self._user(biz)
        if not out_biz_no or not user or not biz.get("template_id"):
            return _error("40004", "Business Failed", "INVALID_PARAMETER", "参数有误")
        repeat = self._repeat(VOUCHER, biz)
        if repeat is not None:
            stats.add("repeats")
            return repeat
        if biz["template_id"] not in self.config.voucher_templates:
            return _error("40004", "Business Failed", "TEMPLATE_NOT_EXIST", "券模板不存在")
        if address_in_share(user, faults.unsubscribed_share, "ali-user"):
            return _error("40004", "Business Failed", self.config.user_not_exist_sub_code,
                          "未知的错误码CIF_USER_NOT_EXIST")
        if self._stock <= 0 or app[RANDOM].random() < faults.quota_share:
            return _error("40004", "Business Failed", self.config.stock_sub_code, "券库存不足")
        self._stock -= 1
        self._seq += 1
        result = {"code": "10000", "msg": "Success", "voucher_id": str(self._seq),
                  "user_id": user}
        self._done[(VOUCHER, out_biz_no)] = (json.dumps(biz, sort_keys=True), result)
        stats.add("vouchers_sent")
        stats.add("recipients")
        self._notify({"out_biz_no": out_biz_no, "voucher_id": str(self._seq),
                      "user_id": user, "template_id": str(biz["template_id"]),
                      "status": "SUCCESS"}, app)
        return result

    def _cash(self, biz: Mapping[str, Any], app: web.Application) -> dict[str, Any]:
        stats, faults = app[STATS], faults_of(app)
        out_biz_no, user = str(biz.get("out_biz_no", "")), self._user(biz)
        if not user or not biz.get("crowd_no"):
            return _error("40004", "Business Failed", "INVALID_PARAMETER", "参数有误")
        if len(out_biz_no) > 96 or not all(c.isalnum() or c == "_" for c in out_biz_no):
            return _error("40004", "Business Failed", "INVALID_PARAMETER", "out_biz_no格式错误")
        repeat = self._repeat(CASH, biz)
        if repeat is not None:
            stats.add("repeats")
            return {**repeat, "repeat_trigger_flag": "true"}
        if biz["crowd_no"] not in self.config.crowd_nos:
            return _error("40004", "Business Failed", "CAMPAIGN_NOT_EXIST", "现金活动不存在")
        if address_in_share(user, faults.unsubscribed_share, "ali-user"):
            return _error("40004", "Business Failed", self.config.user_not_exist_sub_code,
                          "未知的错误码CIF_USER_NOT_EXIST")
        if app[RANDOM].random() < faults.quota_share:
            return _error("40004", "Business Failed", "CAMPAIGN_BUDGET_NOT_ENOUGH", "活动余额不足")
        self._seq += 1
        result = {"code": "10000", "msg": "Success", "trigger_result": "true",
                  "prize_amount": f"{int(biz.get('order_price') or 100) / 100:.2f}",
                  "repeat_trigger_flag": "false", "biz_no": str(self._seq),
                  "out_biz_no": out_biz_no, "coupon_name": "现金红包"}
        self._done[(CASH, out_biz_no)] = (json.dumps(biz, sort_keys=True), result)
        stats.add("cash_triggered")
        stats.add("recipients")
        return result

    def _notify(self, biz: Mapping[str, str], app: web.Application) -> None:
        if not self.config.callback_url:
            return
        now = datetime.now(UTC) + timedelta(hours=8)
        self._notifies.append({
            "notify_id": secrets.token_hex(16), "notify_type": self.config.notify_type,
            "notify_time": now.strftime("%Y-%m-%d %H:%M:%S"), "charset": "utf-8",
            "version": "1.0", "app_id": next(iter(self.config.apps)), **biz})

    def take_notifies(self) -> list[dict[str, str]]:
        """The notifies of the last ``gateway`` call (taken before the handler awaits)."""
        notifies, self._notifies = self._notifies, []
        return notifies

    def sign(self, method: str, payload: dict[str, Any],
             notifies: list[dict[str, str]]) -> tuple[str, list[bytes]]:
        """(signed reply body, signed notify bodies): pure, so it runs on a thread. RSA is most
        of the gateway's CPU and OpenSSL signs without the GIL, so replies and notifies are
        signed on up to two cores while the loop reads the next requests."""
        key = self.config.alipay_private_key
        if method not in (VOUCHER, CASH):  # no method to answer under
            raw = json.dumps(payload, ensure_ascii=False, separators=(",", ":"))
            body = f'{{"error_response":{raw},"sign":"{rsa2_sign(key, raw)}"}}'
        else:
            body = signed_response(method, payload, key)
        signed = []
        for fields in notifies:
            fields = {**fields, "sign": rsa2_sign(key, sign_content(fields)), "sign_type": "RSA2"}
            signed.append(urlencode(fields).encode())
        return body, signed

    def push_notifies(self, bodies: list[bytes], app: web.Application) -> None:
        content_type = "application/x-www-form-urlencoded; charset=utf-8"
        for body in bodies:
            self._sender.push(Callback(self.config.callback_url, body, content_type))
            if app[RANDOM].random() < faults_of(app).duplicate_callback_share:
                self._sender.push(Callback(self.config.callback_url, body, content_type))

    def _reply(self, method: str, payload: dict[str, Any],
               app: web.Application) -> tuple[str, dict[str, Any]]:
        if payload.get("code") != "10000":
            app[STATS].error(payload.get("sub_code") or payload.get("code", "?"))
        return (method if method in (VOUCHER, CASH) else ""), payload


def _error(code: str, msg: str, sub_code: str, sub_msg: str = "") -> dict[str, Any]:
    return {"code": code, "msg": msg, "sub_code": sub_code, "sub_msg": sub_msg or sub_code}


SIMULATOR = web.AppKey("alipay_simulator", AlipaySimulator)


async def gateway_handler(request: web.Request) -> web.Response:
    params: dict[str, str] = dict(request.query)
    if request.method == "POST":
        params.update({k: v for k, v in (await request.post()).items() if isinstance(v, str)})
    sim = request.app[SIMULATOR]
    method, payload = sim.gateway(params, request.app)
    body, notifies = await asyncio.to_thread(sim.sign, method, payload, sim.take_notifies())
    sim.push_notifies(notifies, request.app)
    return web.Response(text=body, content_type="application/json", charset="utf-8")


def make_app(config: AlipaySimConfig) -> web.Application:
    app = base_app(config.faults)
    sender = CallbackSender(stats=app[STATS])
    app[SIMULATOR] = AlipaySimulator(config, sender=sender)
    app.cleanup_ctx.append(sender.context)
    app.router.add_route("GET", "/gateway.do", gateway_handler)
    app.router.add_route("POST", "/gateway.do", gateway_handler)
    return app

