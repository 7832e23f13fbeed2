"""A redemption's event is written by the redemption script itself: ``quanpai serve`` killed
with SIGKILL right after answering 201 still leaves the event in the stream."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import urllib.request
from typing import Any

import redis

from analytics.events import decode_events
from infra.ports import free_port, wait_port
from infra.tokens import mint_bearer

SECRET, MERCHANT, STREAM = "durable-secret", "m1", "quanpai:events"


def _call(url: str, token: str, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
    request = urllib.request.Request(url, data=json.dumps(body).encode(), method="POST",
                                     headers={"Authorization": f"Bearer {token}",
                                              "Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=30) as resp:
        return resp.status, json.loads(resp.read())


def test_sigkill_after_a_201_redemption_loses_no_event(redis_client: redis.Redis,
                                                       redis_url: str) -> None:
    port = free_port()
    env = {**os.environ, "REDIS_URL": redis_url, "QUANPAI_SECRET": SECRET,
           "QUANPAI_MERCHANT": MERCHANT, "QUANPAI_EVENTS_STREAM": STREAM}
    process = subprocess.Popen([sys.executable, "-m", "dispatcher.cli", "serve", "--port",
                                str(port)], env=env, stderr=subprocess.DEVNULL)
    base = f"http://127.0.0.1:{port}"
    try:
        assert wait_port("127.0.0.1", port, timeout=30)
        operator = mint_bearer(secret=SECRET.encode(), role="operator", merchant_id=MERCHANT)
        cashier = mint_bearer(secret=SECRET.encode(), role="cashier", merchant_id=MERCHANT,
                              store_id="S1")
        _, template = _call(base + "/v1/templates", operator, {
            "kind": "cash", "name": "立减券", "discount_fen": 500, "valid_days": 30,
            "total_stock": 10})
        _, issued = _call(base + "/v1/coupons", operator, {
            "template_id": template["template_id"], "member_id": "M1", "campaign_id": "spring"})
        code = issued["coupons"][0]["code"]
        status, redeemed = _call(base + "/v1/redemptions", cashier, {
            "code": code, "order_id": "O1", "store_id": "S1", "amount_fen": 3000})
        assert status == 201
        process.send_signal(signal.SIGKILL)  # no shutdown: nothing buffered gets flushed
        process.wait(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    entries: Any = redis_client.xrange(STREAM)
    events = [e for _, fields in entries for e in decode_events(fields[b"e"])]
    found = [e for e in events if e.event_type == "redeemed"]
    assert len(found) == 1
    event = found[0]
    assert event.event_id == f"redeemed:{MERCHANT}:{redeemed['redemption_id']}"
    assert (event.campaign_id, event.member_id, event.store_id, event.order_id) == (
        "spring", "M1", "S1", "O1")
    assert (event.amount_fen, event.discount_fen, event.cost_fen) == (3000, 500, 500)
    assert event.reason == "cash" and event.ts.tzinfo is not None
