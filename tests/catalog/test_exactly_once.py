"""Exactly-once redemption: concurrency, Idempotency-Key retries, events, a Redis crash (AOF),
and the same scripts on a real three-master Redis Cluster."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import redis
import redis.asyncio

from analytics.events import decode_events
from infra.redis_server import RedisServer

from .conftest import ApiServer, Http, run_http
from .test_api_coupons import give, make, redeem_body


def _sixty_four_at_once(api: ApiServer) -> None:
    async def scenario(http: Http) -> None:
        op = http.as_(api.token("operator"))
        cashier = http.as_(api.token("cashier", store="S1"))
        code = await give(op, await make(op, kind="cash", discount_fen=500))
        results = await asyncio.gather(*[
            cashier("POST", "/v1/redemptions", redeem_body(code, 1000, f"O{i}"),
                    headers={"Idempotency-Key": f"k{i}"})
            for i in range(64)])
        statuses = sorted(status for status, _ in results)
        assert statuses == [201] + [409] * 63
        assert {b["reason"] for s, b in results if s == 409} == {"already_redeemed"}
        # the same Idempotency-Key sent 16 times at once: one result, replayed to the rest
        code2 = await give(op, await make(op, kind="cash", discount_fen=500), "M2")
        same = await asyncio.gather(*[
            cashier("POST", "/v1/redemptions", redeem_body(code2, 1000, "X"),
                    headers={"Idempotency-Key": "same"}) for _ in range(16)])
        assert sorted(s for s, _ in same) == [200] * 15 + [201]
        assert len({b["redemption_id"] for _, b in same}) == 1
        status, body = await cashier("POST", "/v1/redemptions", redeem_body(code2, 999, "X"),
                                     headers={"Idempotency-Key": "same"})
        assert status == 422 and body["field"] == "Idempotency-Key"

    run_http(api, scenario)


def test_sixty_four_concurrent_redemptions_one_success(api: ApiServer) -> None:
    _sixty_four_at_once(api)


def test_sixty_four_concurrent_redemptions_on_a_cluster(cluster_api: ApiServer) -> None:
    _sixty_four_at_once(cluster_api)


def test_cluster_issue_wallet_quote_refund(cluster_api: ApiServer) -> None:
    api = cluster_api

    async def scenario(http: Http) -> None:
        op = http.as_(api.token("operator"))
        cashier = http.as_(api.token("cashier", store="S1"))
        codes = [await give(op, await make(op, kind="cash", discount_fen=100 * (i + 1)))
                 for i in range(4)]
        status, body = await cashier("GET", "/v1/members/M1/wallet")
        assert sorted(c["code"] for c in body["coupons"]) == sorted(codes)
        status, body = await cashier("POST", "/v1/checkout/quote", {
            "member_id": "M1", "store_id": "S1",
            "lines": [{"sku": "A", "quantity": 1, "unit_price_fen": 5000}]})
        assert status == 200 and body["final_fen"] == 5000 - 1000
        status, body = await cashier("POST", "/v1/redemptions", redeem_body(codes[3], 5000))
        assert status == 201
        status, body = await cashier("POST", f"/v1/redemptions/{body['redemption_id']}/refund")
        assert status == 200 and body["already_refunded"] is False
        status, body = await cashier("POST", "/v1/redemptions", redeem_body(codes[3], 5000))
        assert status == 201

    run_http(api, scenario)


def test_redemption_emits_event_with_amount_and_discount(api: ApiServer,
                                                         redis_client: redis.Redis) -> None:
    async def scenario(http: Http) -> None:
        op = http.as_(api.token("operator"))
        cashier = http.as_(api.token("cashier", store="S1"))
        code = await give(op, await make(op, kind="threshold", threshold_fen=5000,
                                         discount_fen=800), campaign="spring")
        status, body = await cashier("POST", "/v1/redemptions", redeem_body(code, 6000))
        assert status == 201
        await cashier("POST", f"/v1/redemptions/{body['redemption_id']}/refund")
        await asyncio.sleep(0.3)

    run_http(api, scenario)
    entries: Any = redis_client.xrange("quanpai:events")
    events = [e for _, fields in entries for e in decode_events(fields[b"e"])]
    redeemed = [e for e in events if e.event_type == "redeemed"]
    assert len(redeemed) == 1
    # every entry says how many events it holds, so the loader need not decode it to count
    assert all(int(fields[b"n"]) == len(decode_events(fields[b"e"])) for _, fields in entries)
    assert (redeemed[0].amount_fen, redeemed[0].discount_fen) == (6000, 800)
    assert redeemed[0].campaign_id == "spring" and redeemed[0].store_id == "S1"
    assert [e.event_type for e in events].count("refunded") == 1


def test_redis_killed_mid_test_loses_no_redemption(tmp_path: Path) -> None:
    server = RedisServer(directory=tmp_path / "redis")
    server.start()
    sync = redis.Redis.from_url(server.url)
    api = ApiServer(client_factory=lambda: redis.asyncio.Redis.from_url(server.url),
                    sync_client=sync).start()
    try:
        async def scenario(http: Http) -> None:
            op = http.as_(api.token("operator"))
            cashier = http.as_(api.token("cashier", store="S1"))
            tid = await make(op, kind="cash", discount_fen=500)
            status, body = await op("POST", "/v1/coupons", {
                "template_id": tid, "campaign_id": "c", "member_ids":
                [f"M{i}" for i in range(40)]})
            codes = [c["code"] for c in body["coupons"]]

            async def redeem(i: int) -> tuple[int, dict[str, object]]:
                return await cashier("POST", "/v1/redemptions",
                                     redeem_body(codes[i], 1000, f"O{i}"),
                                     headers={"Idempotency-Key": f"key-{i}"})

            first = {i: await redeem(i) for i in range(20)}
            assert all(s == 201 for s, _ in first.values())
            server.kill()  # SIGKILL, as a crash: no shutdown save
            down = await redeem(20)
            assert down[0] == 503 and down[1]["error"] == "StoreUnavailable"
            server.start()
            deadline = time.monotonic() + 20
            while (retry := await redeem(20))[0] == 503 and time.monotonic() < deadline:
                await asyncio.sleep(0.2)
            assert retry[0] == 201
            for i in range(20):  # every success from before the crash is still there
                status, body = await redeem(i)
                assert status == 200 and body["replayed"] is True
                assert body["redemption_id"] == first[i][1]["redemption_id"]
                status, body = await cashier("POST", "/v1/redemptions",
                                             redeem_body(codes[i], 1000, f"N{i}"))
                assert status == 409 and body["reason"] == "already_redeemed"
            for i in range(21, 40):
                assert (await redeem(i))[0] == 201

        run_http(api, scenario)
    finally:
        api.stop()
        sync.close()
        server.stop()
