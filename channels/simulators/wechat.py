"""A strict WeChat Official Account simulator: tokens (``/cgi-bin/token``, ``stable_token``),
template messages, mass send of ``wxcard`` by openid list, and the event pushes that follow.

Tokens behave as spec §1.1 says: a re-issue leaves the old token valid for a grace window, then
40001; past expiry 42001; unknown 40014. Sends are checked for the follower (43004 for the
configured share of unsubscribed users), template and keyword rules (40037, 47003), daily quota
(45009), per-openid minute frequency (43117) and idempotency keys (``client_msg_id`` 10 min,
``clientmsgid`` 24 h). Every HTTP answer is 200 with ``errcode``, as the platform does.
"""

from __future__ import annotations

import json
import re
import secrets
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

from aiohttp import web

from channels.callbacks import build_event, push_signature
from channels.content import DEFAULT_WECHAT, KEYWORD_RULES
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

OPENID = re.compile(r"^[A-Za-z0-9_-]{6,64}$")
ERRMSG = {
    0: "ok", -1: "system error", 40001: "invalid credential, access_token is invalid or not "
    "latest", 40003: "invalid openid", 40013: "invalid appid", 40014: "invalid access_token",
    40037: "invalid template_id", 40073: "invalid card id", 40130: "invalid openid list size, "
    "at least two openid", 41001: "access_token missing", 42001: "access_token expired",
    43004: "require subscribe", 43117: "Sending messages to this openid too frequently,please "
    "try later", 45009: "reach max api daily quota limit", 45011: "api minute-quota reach limit,"
    " must slower, retry next minute", 45028: "has no masssend quota", 45065: "clientmsgid "
    "exist", 45066: "same clientmsgid retry too fast", 45067: "clientmsgid size out of limit",
    47001: "data format error", 47003: "argument invalid!",
}


@dataclass(frozen=True)
class WeChatSimConfig:
    appid: str
    secret: str
    templates: Mapping[str, Mapping[str, str]]  # template_id -> keyword -> kind
    card_ids: frozenset[str]
    callback_url: str = ""
    callback_token: str = ""
    token_ttl_s: float = 7200.0
    grace_s: float = 300.0
    stable_rotate_margin_s: float = 300.0
    token_daily: int = 2000
    force_refresh_daily: int = 20
    force_refresh_spacing_s: float = 30.0
    template_daily: int = 100_000
    per_openid_per_minute: int = 30  # undocumented threshold (spec §1.2): configuration
    client_msg_id_window_s: float = 600.0
    mass_daily: int = 100
    mass_min: int = 2
    mass_max: int = 10_000
    mass_per_user_month: int = 4
    clientmsgid_window_s: float = 86_400.0
    clientmsgid_retry_fast_s: float = 5.0
    faults: Faults = field(default_factory=Faults)


def default_templates(template_id: str = DEFAULT_WECHAT.template_id
                      ) -> dict[str, dict[str, str]]:
    """The coupon template of ``channels.content`` under ``template_id``."""
    return {template_id: {k: kind for k, (kind, _) in DEFAULT_WECHAT.keywords.items()}}


class WeChatSimulator:
    def __init__(self, config: WeChatSimConfig, *, sender: CallbackSender) -> None:
        self.config = config
        self._sender = sender
        self.tokens: dict[str, list[float]] = {}  # token -> [expires_at, valid_until]
        self.current = ""
        self.issued = 0
        self._counters: dict[str, int] = {}
        self._last_force = 0.0
        self._client_msg_ids: dict[tuple[str, str], tuple[int, float]] = {}
        self._messaged: set[int] = set()  # hashed (campaign, openid) pairs sent
        self._clientmsgids: dict[str, tuple[int, float]] = {}
        self._minute: dict[str, list[float]] = {}
        self._mass_received: dict[str, int] = {}
        self._msgid = 200_228_000
        self._mass_id = 34_000
        self._prune_at = 200_000

    def _count(self, name: str) -> int:
        key = f"{name}:{time.strftime('%Y%m%d')}"
        self._counters[key] = self._counters.get(key, 0) + 1
        return self._counters[key]

    def _issue(self) -> dict[str, Any]:
        now = time.time()
        if self.current in self.tokens:
            entry = self.tokens[self.current]
            entry[1] = min(entry[1], now + self.config.grace_s)
        token = secrets.token_urlsafe(96)[:128]
        self.issued += 1
        self.tokens[token] = [now + self.config.token_ttl_s, now + self.config.token_ttl_s]
        self.current = token
        return {"access_token": token, "expires_in": int(self.config.token_ttl_s)}

    def expire_all(self) -> None:
        """Test hook: every token issued so far is past its expiry."""
        for entry in self.tokens.values():
            entry[0] = entry[1] = time.time() - 1

    def token_error(self, token: str) -> int:
        """0 when ``token`` may call business APIs, else the errcode."""
        if not token:
            return 41001
        entry = self.tokens.get(token)
        if entry is None:
            return 40014
        now = time.time()
        if now > entry[0]:
            return 42001
        if now > entry[1]:
            return 40001
        return 0

    def credential_error(self, appid: str, secret: str) -> int:
        if appid != self.config.appid:
            return 40013
        return 40001 if secret != self.config.secret else 0

    def get_token(self, appid: str, secret: str) -> dict[str, Any]:
        code = self.credential_error(appid, secret)
        if code:
            return err(code)
        if self._count("token") > self.config.token_daily:
            return err(45009)
        return self._issue()

    def stable_token(self, appid: str, secret: str, force: bool) -> dict[str, Any]:
        code = self.credential_error(appid, secret)
        if code:
            return err(code)
        now = time.time()
        if force:
            if now - self._last_force < self.config.force_refresh_spacing_s:
                return err(45011)
            if self._count("force_refresh") > self.config.force_refresh_daily:
                return err(45009)
            self._last_force = now
            return self._issue()
        entry = self.tokens.get(self.current)
        if entry and entry[0] - now > self.config.stable_rotate_margin_s and entry[1] >= entry[0]:
            return {"access_token": self.current, "expires_in": int(entry[0] - now)}
        return self._issue()

    def template_send(self, body: Any, app: web.Application) -> dict[str, Any]:
        stats, faults = app[STATS], faults_of(app)
        if not isinstance(body, dict) or not isinstance(body.get("data"), dict):
            return err(47001)
        openid = body.get("touser")
        if not isinstance(openid, str) or not OPENID.match(openid):
            return err(40003)
        keywords = self.config.templates.get(str(body.get("template_id")))
        if keywords is None:
            return err(40037)
        data = body["data"]
        if set(data) != set(keywords):
            return err(47003, "argument invalid! data keys do not match the template")
        for key, kind in keywords.items():
            value = data[key].get("value") if isinstance(data[key], dict) else None
            rule = KEYWORD_RULES.get(kind)
            if not isinstance(value, str) or (rule is not None and not rule[0].match(value)):
                return err(47003, f"argument invalid! data.{key}.value invalid")
        if address_in_share(openid, faults.unsubscribed_share, "wx-unsub"):
            return err(43004)
        now = time.time()
        cmid = body.get("client_msg_id")
        if isinstance(cmid, str) and cmid:
            seen = self._client_msg_ids.get((openid, cmid))
            if seen and now - seen[1] < self.config.client_msg_id_window_s:
                stats.add("template_deduplicated")
                return {"errcode": 0, "errmsg": "ok", "msgid": seen[0]}
        draw = app[RANDOM].random()
        if draw < faults.system_error_share:
            return err(-1)
        if draw < faults.system_error_share + faults.quota_share:
            return err(45009)
        if self._count("template") > self.config.template_daily:
            return err(45009)
        recent = [t for t in self._minute.get(openid, ()) if now - t < 60]
        if len(recent) >= self.config.per_openid_per_minute:
            return err(43117)
        recent.append(now)
        self._minute[openid] = recent
        if len(self._client_msg_ids) + len(self._minute) > self._prune_at:
            self._prune(now)
        self._msgid += 1
        if isinstance(cmid, str) and cmid:
            self._client_msg_ids[(openid, cmid)] = (self._msgid, now)
        stats.add("template_sent")
        stats.add("recipients")
        if isinstance(cmid, str) and ":" in cmid:
            # A campaign (client_msg_id "<campaign>:<member>") messaging an openid again past
            # the dedupe window: must stay 0.
            seen_key = hash((cmid.split(":", 1)[0], openid))
            if seen_key in self._messaged:
                stats.add("repeats")
            self._messaged.add(seen_key)
        blocked = address_in_share(openid, faults.invalid_share, "wx-block")
        self._push({"ToUserName": "gh_sim000000001", "FromUserName": openid,
                    "CreateTime": int(now), "MsgType": "event",
                    "Event": "TEMPLATESENDJOBFINISH", "MsgID": self._msgid,
                    "Status": "failed:user block" if blocked else "success"}, openid, app)
        return {"errcode": 0, "errmsg": "ok", "msgid": self._msgid}

    def _prune(self, now: float) -> None:
        """Forget dedupe keys and minute counters past their windows (bounded memory)."""
        window = self.config.client_msg_id_window_s
        self._client_msg_ids = {k: v for k, v in self._client_msg_ids.items()
                                if now - v[1] < window}
        self._minute = {k: v for k, v in self._minute.items() if now - v[-1] < 60}
        self._prune_at = max(200_000, 2 * (len(self._client_msg_ids) + len(self._minute)))

    def mass_send(self, body: Any, app: web.Application) -> dict[str, Any]:
        c, stats, faults = self.config, app[STATS], faults_of(app)
        if not isinstance(body, dict):
            return err(47001)
        users = body.get("touser")
        if not isinstance(users, list) or not c.mass_min <= len(users) <= c.mass_max:
            return err(40130)
        if not all(isinstance(u, str) and OPENID.match(u) for u in users):
            return err(40003)
        if body.get("msgtype") != "wxcard":
            return err(47001, "data format error: only wxcard is simulated")
        card = body.get("wxcard")
        if not isinstance(card, dict) or card.get("card_id") not in c.card_ids:
            return err(40073)
        now = time.time()
        cmid = body.get("clientmsgid")
        if isinstance(cmid, str) and cmid:
            if len(cmid.encode()) > 64:
                return err(45067)
            seen = self._clientmsgids.get(cmid)
            if seen and now - seen[1] < c.clientmsgid_window_s:
                if now - seen[1] < c.clientmsgid_retry_fast_s:
                    return err(45066)
                return {**err(45065), "msg_id": seen[0]}
        if app[RANDOM].random() < faults.quota_share or self._count("mass") > c.mass_daily:
            return err(45028)
        self._mass_id += 1
        if isinstance(cmid, str) and cmid:
            self._clientmsgids[cmid] = (self._mass_id, now)
        month = time.strftime("%Y%m")
        sent = filtered = 0
        for openid in users:
            key = f"{month}:{openid}"
            if address_in_share(openid, faults.unsubscribed_share, "wx-unsub") or \
                    self._mass_received.get(key, 0) >= c.mass_per_user_month:
                filtered += 1
                continue
            self._mass_received[key] = self._mass_received.get(key, 0) + 1
            sent += 1
        stats.add("mass_jobs")
        stats.add("recipients", sent)
        stats.add("mass_filtered", filtered)
        self._push({"ToUserName": "gh_sim000000001", "FromUserName": "oSimMassSender000",
                    "CreateTime": int(now), "MsgType": "event", "Event": "MASSSENDJOBFINISH",
                    "MsgID": self._mass_id, "Status": "send success", "TotalCount": len(users),
                    "FilterCount": sent, "SentCount": sent, "ErrorCount": filtered},
                   "", app)
        return {"errcode": 0, "errmsg": "send job submission success", "msg_id": self._mass_id}

    def _push(self, fields: Mapping[str, str | int], openid: str, app: web.Application) -> None:
        if not self.config.callback_url:
            return
        stamp, nonce = str(int(time.time())), secrets.token_hex(5)
        query = {"signature": push_signature(self.config.callback_token, stamp, nonce),
                 "timestamp": stamp, "nonce": nonce}
        if openid:
            query["openid"] = openid
        url = f"{self.config.callback_url}?{urlencode(query)}"
        body = build_event(fields)
        self._sender.push(Callback(url, body, "text/xml"))
        if app[RANDOM].random() < faults_of(app).duplicate_callback_share:
            self._sender.push(Callback(url, body, "text/xml"))


def err(code: int, message: str = "") -> dict[str, Any]:
    rid = secrets.token_hex(4)
    return {"errcode": code, "errmsg": f"{message or ERRMSG.get(code, 'error')} rid: {rid}"}


SIMULATOR = web.AppKey("wechat_simulator", WeChatSimulator)


def _reply(app: web.Application, payload: dict[str, Any]) -> web.Response:
    if payload.get("errcode"):
        app[STATS].error(payload["errcode"])
    return web.json_response(payload, dumps=lambda v: json.dumps(v, ensure_ascii=False))


async def token_handler(request: web.Request) -> web.Response:
    sim, q = request.app[SIMULATOR], request.query
    if q.get("grant_type") != "client_credential":
        return _reply(request.app, err(40002, "invalid grant_type"))
    return _reply(request.app, sim.get_token(q.get("appid", ""), q.get("secret", "")))


async def stable_token_handler(request: web.Request) -> web.Response:
    sim = request.app[SIMULATOR]
    try:
        body = await request.json()
    except ValueError:
        return _reply(request.app, err(47001))
    if not isinstance(body, dict) or body.get("grant_type") != "client_credential":
        return _reply(request.app, err(40002, "invalid grant_type"))
    return _reply(request.app, sim.stable_token(str(body.get("appid", "")),
                                                str(body.get("secret", "")),
                                                body.get("force_refresh") is True))


def _business(kind: str) -> Any:
    async def handler(request: web.Request) -> web.Response:
        sim = request.app[SIMULATOR]
        code = sim.token_error(request.query.get("access_token", ""))
        if code:
            return _reply(request.app, err(code))
        try:
            body = json.loads(await request.read())
        except ValueError:
            return _reply(request.app, err(47001))
        if kind == "template":
            return _reply(request.app, sim.template_send(body, request.app))
        return _reply(request.app, sim.mass_send(body, request.app))
    return handler


async def expire_handler(request: web.Request) -> web.Response:
    request.app[SIMULATOR].expire_all()
    return web.json_response({"expired": True})


async def tokens_handler(request: web.Request) -> web.Response:
    return web.json_response({"issued": request.app[SIMULATOR].issued})


def make_app(config: WeChatSimConfig) -> web.Application:
    app = base_app(config.faults)
    sender = CallbackSender(stats=app[STATS])
    app[SIMULATOR] = WeChatSimulator(config, sender=sender)
    app.cleanup_ctx.append(sender.context)
    app.router.add_get("/cgi-bin/token", token_handler)
    app.router.add_post("/cgi-bin/stable_token", stable_token_handler)
    app.router.add_post("/cgi-bin/message/template/send", _business("template"))
    app.router.add_post("/cgi-bin/message/mass/send", _business("mass"))
    app.router.add_post("/_sim/expire_tokens", expire_handler)
    app.router.add_get("/_sim/tokens", tokens_handler)
    return app
