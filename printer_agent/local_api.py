"""The agent's endpoint on the store PC, for the POS (loopback by default).

    POST /points-qr  {"order_id": "...", "amount_fen": 3250, "payment": "cash"}
        202 {"request_id", "queued": true}: the receipt prints when the service has minted the
        claim (the POS never waits for the printer or the service). A WeChat payment earns its
        points by itself: 200 {"queued": false, "reason": "wechat_pays_points"}.
    GET  /status     the agent's, the printer's and the spool's status

Errors are JSON ``{"error", "message", "field"}`` with status 422.
"""

from __future__ import annotations

import json
from typing import Any

from aiohttp import web

from printer_agent.agent import Agent

AGENT = web.AppKey("agent", Agent)
PAYMENTS = ("cash", "card", "alipay", "unionpay", "wechat", "other")


def _bad(field: str, message: str) -> web.Response:
    return web.json_response({"error": "InvalidInput", "field": field, "message": message},
                             status=422)


async def points_qr(request: web.Request) -> web.Response:
    try:
        data: Any = json.loads(await request.read() or b"null")
    except ValueError:
        return _bad("body", "not valid JSON")
    if not isinstance(data, dict):
        return _bad("body", "expected a JSON object")
    order_id, amount, payment = data.get("order_id"), data.get("amount_fen"), data.get(
        "payment", "cash")
    if not isinstance(order_id, str) or not 0 < len(order_id) <= 64 or "|" in order_id:
        return _bad("order_id", "expected 1-64 characters")
    if not isinstance(amount, int) or isinstance(amount, bool) or amount <= 0:
        return _bad("amount_fen", "expected a positive integer (fen)")
    if payment not in PAYMENTS:
        return _bad("payment", f"expected one of {', '.join(PAYMENTS)}")
    if payment == "wechat":
        return web.json_response({"queued": False, "reason": "wechat_pays_points"})
    agent = request.app[AGENT]
    request_id = f"points:{order_id}"
    body = json.dumps({"order_id": order_id, "amount_fen": amount}, ensure_ascii=False)
    fresh = agent.spool.outbox_add(request_id, body)
    agent.wake_outbox()
    return web.json_response({"request_id": request_id, "queued": True, "duplicate": not fresh},
                             status=202)


async def status(request: web.Request) -> web.Response:
    return web.json_response(request.app[AGENT].status())


def make_local_app(agent: Agent) -> web.Application:
    app = web.Application(client_max_size=64 * 1024)
    app[AGENT] = agent
    app.router.add_post("/points-qr", points_qr)
    app.router.add_get("/status", status)
    return app
