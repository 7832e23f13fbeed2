"""``/v1/campaigns`` in the composed app over a real loopback server: operator only, 422 naming
the field of a bad definition, draft -> run -> completed by a real worker, 409 for an operation
the state does not allow, and the routes in the generated OpenAPI document."""

from __future__ import annotations

import asyncio
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import aiohttp
import redis
from aiohttp import web

from dispatcher.app import build_app
from dispatcher.worker import start_worker
from infra.tokens import mint_bearer
from tests.dispatcher.conftest import Simulators, flow_settings
from tests.dispatcher.test_lifecycle import recipients, sms_members


def test_campaign_routes(redis_url: str, redis_client: redis.Redis, simulators: Simulators,
                         tmp_path: Path) -> None:
    settings = replace(flow_settings(redis_url, simulators), batch_size=10)
    members = tmp_path / "members.parquet"
    sms_members(30).to_parquet(members)
    secret = settings.secret_key.encode()

    def auth(role: str) -> dict[str, str]:
        token = mint_bearer(secret=secret, role=role, merchant_id="demo",
                            store_id="S1" if role == "cashier" else "")
        return {"Authorization": f"Bearer {token}"}

    async def main() -> None:
        runner = web.AppRunner(build_app(settings, redis_url=redis_url), access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        base = f"http://127.0.0.1:{port}/v1"
        try:
            async with aiohttp.ClientSession(headers=auth("operator")) as http:
                async def call(method: str, path: str, body: Any = None,
                               **kw: Any) -> tuple[int, Any]:
                    async with http.request(method, base + path, json=body, **kw) as reply:
                        return reply.status, await reply.json()

                good = {"name": "会员日", "audience": {"snapshot": str(members)},
                        "channels": ["sms"], "content": {"store": "南京西路店"}}
                status, body = await call("POST", "/campaigns", good,
                                          headers=auth("cashier"))
                assert status == 403
                status, body = await call("POST", "/campaigns",
                                          {**good, "channels": ["sms", "fax"]})
                assert (status, body["field"]) == (422, "channels[1]")
                status, body = await call("POST", "/campaigns",
                                          {**good, "budget": {"max_cost_fen": 0}})
                assert (status, body["field"]) == (422, "budget.max_cost_fen")
                assert redis_client.keys("{cmp:*") == []

                status, body = await call("POST", "/campaigns", good)
                assert status == 201 and body["status"] == "draft"
                cid = body["campaign_id"]
                status, body = await call("GET", "/campaigns")
                assert [c["campaign_id"] for c in body["campaigns"]] == [cid]
                status, body = await call("POST", f"/campaigns/{cid}/run")
                assert (status, body["status"]) == (200, "running")
                deadline = time.monotonic() + 60
                while (body := (await call("GET", f"/campaigns/{cid}"))[1])["status"] \
                        != "completed":
                    assert time.monotonic() < deadline, body
                    await asyncio.sleep(0.2)
                assert body["channels"]["sms"] == {"planned": 30, "sent": 30}
                assert body["issued"] == 30
                status, body = await call("POST", f"/campaigns/{cid}/pause")
                assert (status, body["reason"]) == (409, "wrong_state")
                status, body = await call("POST", "/campaigns/nope-1/cancel")
                assert status == 404
                status, body = await call("GET", "/openapi.json")
                assert {"/v1/campaigns", "/v1/campaigns/{campaign_id}/requeue"} <= \
                    set(body["paths"])
        finally:
            await runner.cleanup()

    worker = start_worker(settings, threads=2)
    try:
        asyncio.run(main())
    finally:
        worker.stop()
    assert recipients(simulators) == 30
