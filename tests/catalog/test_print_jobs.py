"""The service side of the store printers: per-store job queues over real HTTP and Redis, roles
and stores, acknowledgements with one ``printed`` event per job, status for operators, slips
queued from redemption events, and the routes in the OpenAPI document."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import redis

from analytics.events import decode_events
from catalog.errors import NotFound
from catalog.print_jobs import acknowledge, enqueue, job_state, queue_keys

from .conftest import ApiServer, Http, run_http

JOBS = "/v1/stores/S1/print-jobs"


def _events(client: redis.Redis, kind: str) -> list[Any]:
    rows: Any = client.xrange("quanpai:events")
    return [e for _, f in rows for e in decode_events(f[b"e"]) if e.event_type == kind]


async def _coupon(op: Http, member: str) -> tuple[str, str]:
    status, body = await op("POST", "/v1/templates", {
        "kind": "threshold", "name": "满100减20", "total_stock": 10, "valid_days": 30,
        "threshold_fen": 10000, "discount_fen": 2000})
    assert status == 201, body
    status, issued = await op("POST", "/v1/coupons", {"template_id": body["template_id"],
                                                      "member_id": member, "campaign_id": "c1"})
    assert status == 201, issued
    return body["template_id"], issued["coupons"][0]["code"]


def test_roles_stores_and_bad_input(api: ApiServer) -> None:
    async def scenario(http: Http) -> None:
        printer = http.as_(api.token("printer", store="S1"))
        other = http.as_(api.token("printer", store="S2"))
        cashier = http.as_(api.token("cashier", store="S1"))
        assert (await printer("GET", JOBS))[0] == 200
        assert (await cashier("GET", JOBS))[0] == 403  # only the agent reads the feed
        assert (await other("GET", JOBS))[0] == 403  # nor another store's agent
        assert (await other("POST", JOBS, {"kind": "points_qr", "order_id": "A",
                                           "amount_fen": 100}))[0] == 403
        for query, field in (("?after=nope", "after"), ("?wait=99", "wait"),
                             ("?limit=0", "limit")):
            status, body = await printer("GET", JOBS + query)
            assert status == 422 and body["field"] == field, body
        for job, field in (({"kind": "menu"}, "kind"), ({"kind": "points_qr", "order_id": "A"},
                                                        "amount_fen"),
                           ({"kind": "points_qr", "order_id": "A", "amount_fen": 0},
                            "amount_fen"),
                           ({"kind": "coupon_voucher", "code": "X"}, "kind"),
                           ({"kind": "redemption_slip", "redemption_id": "x"}, "redemption_id"),
                           ({"kind": "points_qr", "order_id": "A", "amount_fen": 1, "x": 1},
                            "x")):
            status, body = await printer("POST", JOBS, job)
            assert status == 422 and body["field"] == field, (job, body)
        status, body = await printer("POST", JOBS + "/ack", {"received_up_to": "1-x"})
        assert status == 422 and body["field"] == "received_up_to"
        assert (await cashier("GET", "/v1/printers"))[0] == 403
        status, body = await printer("GET", JOBS + "/nope")
        assert status == 404

    run_http(api, scenario)


def test_queue_ack_printed_events_and_status(api: ApiServer, redis_client: redis.Redis) -> None:
    acknowledged: list[str] = []

    async def scenario(http: Http) -> None:
        printer = http.as_(api.token("printer", store="S1"))
        cashier = http.as_(api.token("cashier", store="S1"))
        op = http.as_(api.token("operator"))
        status, job = await cashier("POST", JOBS, {"kind": "points_qr", "order_id": "A1",
                                                   "amount_fen": 3250})
        assert status == 201 and job["created"] and job["data"]["token"].startswith("pc1.")
        status, again = await cashier("POST", JOBS, {"kind": "points_qr", "order_id": "A1",
                                                     "amount_fen": 3250})
        assert status == 200 and not again["created"] and again["seq"] == job["seq"]
        _, code = await _coupon(op, "13800138001")
        status, voucher = await op("POST", JOBS, {"kind": "coupon_voucher", "code": code})
        assert status == 201 and voucher["data"]["qr_payload"].startswith("QP1:")
        assert voucher["data"]["value_text"] == "满100减20"

        status, feed = await printer("GET", JOBS + "?wait=0")
        assert [j["job_id"] for j in feed["jobs"]] == [job["job_id"], voucher["job_id"]]
        assert feed["cursor"] == voucher["seq"]
        assert (await printer("POST", JOBS + "/ack", {"received_up_to": feed["cursor"]}))[0] \
            == 200
        # an agent that lost its spool resumes after what it acknowledged, waiting for more
        loop = asyncio.get_running_loop()
        started = loop.time()
        status, empty = await printer("GET", JOBS + "?wait=1")
        assert empty["jobs"] == [] and loop.time() - started >= 0.9
        waiting = asyncio.ensure_future(printer("GET", JOBS + "?wait=20"))
        await asyncio.sleep(0.3)
        status, late = await cashier("POST", JOBS, {"kind": "points_qr", "order_id": "A2",
                                                    "amount_fen": 990})
        status, woke = await waiting
        assert [j["job_id"] for j in woke["jobs"]] == [late["job_id"]]

        for _ in range(2):  # a repeated acknowledgement counts once
            status, ack = await printer("POST", JOBS + "/ack", {
                "printed": [job["job_id"], voucher["job_id"]]})
            assert status == 200
        assert ack["new"] == []
        acknowledged.extend([job["job_id"], voucher["job_id"]])
        status, state = await printer("GET", f"{JOBS}/{job['job_id']}")
        assert state["state"] == "printed"
        status, state = await cashier("GET", f"{JOBS}/{late['job_id']}")
        assert state["state"] == "queued"

        status, _ = await printer("PUT", "/v1/stores/S1/printer", {
            "printer": {"state": "paper_out", "detail": "缺纸", "target": "tcp://p:9100"},
            "spool": {"queued": 1}, "service": {"connected": True}})
        assert status == 200
        status, body = await op("GET", "/v1/printers")
        [store] = body["stores"]
        assert store["store_id"] == "S1" and store["agent_online"] is True
        assert store["printer"]["state"] == "paper_out" and store["waiting_on_service"] == 1
        status, one = await op("GET", "/v1/stores/S1/printer")
        assert one["printer"]["detail"] == "缺纸"
        await asyncio.sleep(0.3)  # the event buffer flushes every 50 ms

    run_http(api, scenario)
    printed = _events(redis_client, "printed")
    assert sorted(e.event_id for e in printed) == sorted(f"printed:m1:{j}" for j in acknowledged)
    assert {e.reason for e in printed} == {"points_qr", "coupon_voucher"}
    assert {e.order_id for e in printed} == {"A1", ""} and all(e.store_id == "S1" for e in printed)


def test_each_redemption_queues_one_slip(api: ApiServer) -> None:
    async def scenario(http: Http) -> None:
        op = http.as_(api.token("operator"))
        cashier = http.as_(api.token("cashier", store="S1"))
        printer = http.as_(api.token("printer", store="S1"))
        _, code = await _coupon(op, "13800138001")
        body = {"code": code, "order_id": "R1", "store_id": "S1", "amount_fen": 12000,
                "cashier": "小王"}
        status, redeemed = await cashier("POST", "/v1/redemptions", body,
                                         headers={"Idempotency-Key": "k1"})
        assert status == 201, redeemed
        status, replay = await cashier("POST", "/v1/redemptions", body,
                                       headers={"Idempotency-Key": "k1"})
        assert status == 200 and replay["replayed"]  # the replay queues no second slip
        status, feed = await printer("GET", JOBS)
        [job] = feed["jobs"]
        rid = redeemed["redemption_id"]
        assert job["job_id"] == f"slip:{rid}" and job["kind"] == "redemption_slip"
        data = job["data"]
        assert (data["coupon_name"], data["discount_fen"], data["order_id"], data["member_id"],
                data["cashier"]) == ("满100减20", 2000, "R1", "13800138001", "小王")
        assert data["redeemed_at"].endswith("+08:00") and data["code"].count("-") >= 3
        status, copy = await cashier("POST", JOBS, {"kind": "redemption_slip",
                                                    "redemption_id": rid, "copy": 1})
        assert status == 201 and copy["job_id"] == f"slip:{rid}:1"
        other = http.as_(api.token("cashier", store="S2"))
        status, _ = await other("POST", "/v1/stores/S2/print-jobs", {
            "kind": "redemption_slip", "redemption_id": rid})
        assert status == 404  # redeemed at another store

    run_http(api, scenario)


def test_a_non_member_payment_prints_its_join_offer(api: ApiServer) -> None:
    async def scenario(http: Http) -> None:
        cashier = http.as_(api.token("cashier", store="S1"))
        printer = http.as_(api.token("printer", store="S1"))
        body = {"store_id": "S1", "order_id": "PAY1", "amount_fen": 5000}
        status, paid = await cashier("POST", "/v1/payments", body)
        assert status == 201 and paid["member"] is False, paid
        status, again = await cashier("POST", "/v1/payments", body)
        assert status == 200 and again["replayed"]
        status, asked = await cashier("POST", JOBS, {"kind": "points_qr", "order_id": "PAY1",
                                                     "amount_fen": 5000})
        assert status == 200 and not asked["created"]  # the POS asking too prints nothing more
        status, feed = await printer("GET", JOBS)
        [job] = feed["jobs"]
        assert job["job_id"] == "points:S1:PAY1"
        assert job["data"]["token"] == paid["join_offer"]["token"]

    run_http(api, scenario)


def test_print_routes_are_in_the_openapi_document(api: ApiServer) -> None:
    async def scenario(http: Http) -> None:
        status, doc = await http("GET", "/v1/openapi.json")
        assert status == 200
        paths = doc["paths"]
        assert set(paths["/v1/stores/{store_id}/print-jobs"]) == {"get", "post"}
        assert "put" in paths["/v1/stores/{store_id}/printer"]
        assert "get" in paths["/v1/printers"]
        post = paths["/v1/stores/{store_id}/print-jobs"]["post"]
        assert "requestBody" in post

    run_http(api, scenario)


def test_a_store_keeps_its_last_jobs_and_forgets_older_ids(api: ApiServer,
                                                            redis_client: redis.Redis) -> None:
    """The id and outcome hashes are trimmed with the queue (they once grew by a field per
    receipt forever); jobs still kept are deduplicated and keep their outcome."""
    catalog = api.catalog
    assert catalog is not None
    keep = 100

    async def scenario() -> dict[str, Any]:
        for n in range(250):
            await enqueue(catalog, merchant_id="m1", store_id="S9", job_id=f"points:S9:{n}",
                          kind="points_qr", data={"order_id": str(n)}, keep=keep)
            if n in (10, 240):  # one printed long ago, one recently
                await acknowledge(catalog, merchant_id="m1", store_id="S9",
                                  printed=[f"points:S9:{n}"])
        again = await enqueue(catalog, merchant_id="m1", store_id="S9", job_id="points:S9:200",
                              kind="points_qr", data={"order_id": "200"}, keep=keep)
        bogus = await acknowledge(catalog, merchant_id="m1", store_id="S9",
                                  printed=["points:S9:never-queued", "points:S9:3"])
        states = {}
        for n in (3, 10, 240, 249):
            try:
                states[n] = await job_state(catalog, merchant_id="m1", store_id="S9",
                                            job_id=f"points:S9:{n}")
            except NotFound:
                states[n] = "NotFound"
        return {"again": again["created"], "bogus": bogus["new"], "states": states}

    got = asyncio.run_coroutine_threadsafe(scenario(), api._loop).result(60)
    stream, ids, done = queue_keys("m1", "S9")
    length = int(redis_client.xlen(stream))
    assert keep <= length < keep + keep // 100 + 1
    assert int(redis_client.hlen(ids)) == length  # one id per job still queued
    entries: Any = redis_client.xrange(stream)
    kept = {json.loads(fields[b"j"])["job_id"] for _, fields in entries}
    id_keys: Any = redis_client.hkeys(ids)
    done_keys: Any = redis_client.hkeys(done)
    assert {k.decode() for k in id_keys} == kept
    assert {k.decode() for k in done_keys} == {"points:S9:240"}
    assert got["again"] is False  # a kept job is still queued once
    assert got["bogus"] == []  # nor does an unknown or forgotten id count as printed
    assert got["states"] == {3: "NotFound", 10: "NotFound", 240: "printed", 249: "queued"}

