"""``/v1/schedules`` in the composed app over a real loopback server: operator only, 422 naming
the field of a bad definition (nothing stored), add, list with next runs, show, preview, pause,
resume, delete, and the routes in the generated OpenAPI document."""

from __future__ import annotations

import asyncio
import datetime as dt
from typing import Any

import aiohttp
import pandas as pd
import pytest
import redis
from aiohttp import web

from dispatcher.app import build_app
from infra.settings import load_settings
from infra.tokens import mint_bearer
from segmentation.synthetic import GeneratedData
from tests.dispatcher.scheduler_support import definition, member_base


@pytest.fixture(scope="module")
def base(tmp_path_factory: pytest.TempPathFactory) -> GeneratedData:
    return member_base(tmp_path_factory.mktemp("api"), members=200, seed=9)


def test_schedule_routes(redis_url: str, redis_client: redis.Redis, base: GeneratedData) -> None:
    settings = load_settings({"REDIS_URL": redis_url, "SMS_QUIET_HOURS": "off"})
    secret = settings.secret_key.encode()

    def auth(role: str) -> dict[str, str]:
        token = mint_bearer(secret=secret, role=role, merchant_id="demo",
                            store_id="S1" if role == "cashier" else "")
        return {"Authorization": f"Bearer {token}"}

    members = pd.read_parquet(base.members)
    born = members[~members.birthday_is_lunar & members.birthday.notna()].birthday.iloc[0]
    day = dt.date(2025, born.month, min(born.day, 28))
    good = definition("bday", {"type": "birthday"}, base, name="生日券")

    async def main() -> None:
        runner = web.AppRunner(build_app(settings, redis_url=redis_url), access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        root = f"http://127.0.0.1:{port}"
        try:
            async with aiohttp.ClientSession(headers=auth("operator")) as http:
                async def call(method: str, path: str, body: Any = None,
                               **kw: Any) -> tuple[int, Any]:
                    async with http.request(method, root + "/v1" + path, json=body,
                                            **kw) as reply:
                        return reply.status, await reply.json()

                status, _ = await call("POST", "/schedules", good, headers=auth("cashier"))
                assert status == 403
                bad = {**good, "trigger": {"type": "wake_up", "inactive_days": 30}}
                status, body = await call("POST", "/schedules", bad)
                assert (status, body["field"]) == (422, "trigger.cooldown_days")
                status, body = await call("POST", "/schedules", {**good, "colour": "red"})
                assert status == 422 and body["field"] == "colour"
                # no data named and no segment rules file on this server: nothing to read
                status, body = await call("POST", "/schedules", {**good, "audience": {}})
                assert status == 422 and body["field"] == "audience"
                assert redis_client.keys("{sched:*") == []

                status, body = await call("POST", "/schedules", good)
                assert status == 201 and body["id"] == "bday" and body["next_runs"]
                status, body = await call("POST", "/schedules", good)
                assert (status, body["reason"]) == (409, "exists")
                status, body = await call("GET", "/schedules")
                assert [(s["id"], s["name"], s["paused"]) for s in body["schedules"]] == [
                    ("bday", "生日券", False)]
                status, body = await call("GET", f"/schedules/bday/preview?date={day}")
                assert status == 200 and body["would_send"] == body["triggered"] > 0
                status, body = await call("GET", "/schedules/bday/preview?date=soon")
                assert status == 422
                status, body = await call("POST", "/schedules/bday/pause")
                assert (status, body["paused"], body["next_runs"]) == (200, True, [])
                status, body = await call("POST", "/schedules/bday/resume")
                assert body["paused"] is False
                status, body = await call("GET", "/schedules/bday")
                assert body["definition"]["trigger"] == {"type": "birthday"}
                status, body = await call("DELETE", "/schedules/bday")
                assert status == 200
                status, body = await call("GET", "/schedules/bday")
                assert status == 404
                async with http.get(root + "/v1/openapi.json") as reply:
                    document = await reply.json()
                assert {"/v1/schedules", "/v1/schedules/{schedule_id}",
                        "/v1/schedules/{schedule_id}/preview"} <= set(document["paths"])
        finally:
            await runner.cleanup()

    asyncio.run(main())
