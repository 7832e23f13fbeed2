"""``/v1/segments`` and ``/v1/tags`` over real HTTP: counts and previews equal the rules-file
evaluation, bad conditions are 422 naming the field, snapshots are written, tags are set."""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
import yaml
from aiohttp import ClientSession
from aiohttp.test_utils import TestServer

from infra.http_api import create_app
from infra.tokens import mint_bearer
from segmentation.api import SegmentService, add_routes
from segmentation.audience import evaluate_rules
from segmentation.rules import load_rules
from segmentation.snapshot import read_snapshot
from segmentation.synthetic import generate
from segmentation.tags import MemoryTags

SECRET = b"segments-api-secret"
AS_OF = "2026-06-30"
WHERE: dict[str, Any] = {"spend": {"last": "90d", "gte": "100元"}, "tier": ["gold", "platinum"]}


@pytest.fixture(scope="module")
def rules_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    directory = tmp_path_factory.mktemp("segments-api")
    generate(members=1200, seed=3, out_dir=directory)
    rules = {"name": "console", "transactions": {"path": "transactions.parquet"},
             "members": {"path": "members.parquet"},
             "segments": [{"name": "console", "where": WHERE}]}
    path = directory / "rules.yaml"
    path.write_text(yaml.safe_dump(rules, allow_unicode=True), "utf-8")
    return path


Scenario = Callable[[Callable[..., Awaitable[tuple[int, Any]]]], Awaitable[None]]


def serve(service: SegmentService, scenario: Scenario, role: str = "operator") -> None:
    token = mint_bearer(secret=SECRET, role=role, merchant_id="m1", store_id="", member_id="")

    async def main() -> None:
        app = create_app(secret=SECRET)
        add_routes(app, service=service)
        server = TestServer(app)
        await server.start_server()
        try:
            async with ClientSession() as session:
                async def call(method: str, path: str, body: Any = None) -> tuple[int, Any]:
                    async with session.request(method, str(server.make_url(path)), json=body,
                                               headers={"Authorization": f"Bearer {token}"}
                                               ) as resp:
                        return resp.status, await resp.json()
                await scenario(call)
        finally:
            await server.close()

    asyncio.run(main())


def service_for(rules_path: Path | None, tmp_path: Path) -> SegmentService:
    return SegmentService(merchant_id="m1", rules=load_rules(rules_path) if rules_path else None,
                          tags=MemoryTags(), snapshots=tmp_path / "snapshots")


def test_count_preview_and_snapshot_match_the_rules_file(rules_path: Path,
                                                         tmp_path: Path) -> None:
    expected = evaluate_rules(load_rules(rules_path), as_of=dt.date.fromisoformat(AS_OF))
    want = set(expected.members_of("console").member_id.tolist())
    assert 0 < len(want) < len(expected.frame)
    service = service_for(rules_path, tmp_path)

    async def scenario(call: Callable[..., Awaitable[tuple[int, Any]]]) -> None:
        status, body = await call("POST", "/v1/segments/count", {"where": WHERE, "as_of": AS_OF})
        assert status == 200, body
        assert body["count"] == len(want) and body["members"] == len(expected.frame)
        assert body["as_of"] == AS_OF
        status, body = await call("POST", "/v1/segments/preview",
                                  {"where": {"has_purchased": False}, "as_of": AS_OF,
                                   "sample": 3})
        assert status == 200, body
        assert len(body["sample"]) == 3
        for row in body["sample"]:  # never bought: shown plainly
            assert row["frequency"] == 0 and row["recency_days"] == "-"
            assert row["rfm_segment"] == "未购买 never bought"
            assert "*" in row["phone"] or row["phone"] == ""
        status, body = await call("POST", "/v1/segments/snapshots",
                                  {"name": "gold-spenders", "where": WHERE, "as_of": AS_OF})
        assert status == 201, body
        snapshot = read_snapshot(Path(body["snapshot"]))
        assert set(snapshot.member_ids("gold-spenders")) == want
        assert body["count"] == len(want)

    serve(service, scenario)


@pytest.mark.parametrize(("where", "field"), [
    ({"spend": {"last": "90d", "gte": 100}}, "where.spend.gte"),
    ({"colour": "red"}, "where.colour"),
    ({"rfm_segment": "Nobody"}, "where.rfm_segment"),
    ({}, "where"),
])
def test_bad_conditions_are_422_naming_the_field(rules_path: Path, tmp_path: Path,
                                                 where: dict[str, Any], field: str) -> None:
    async def scenario(call: Callable[..., Awaitable[tuple[int, Any]]]) -> None:
        status, body = await call("POST", "/v1/segments/count", {"where": where})
        assert status == 422 and body["field"] == field, body

    serve(service_for(rules_path, tmp_path), scenario)


def test_tags_over_the_api_and_no_data_configured(tmp_path: Path) -> None:
    service = service_for(None, tmp_path)

    async def scenario(call: Callable[..., Awaitable[tuple[int, Any]]]) -> None:
        status, body = await call("POST", "/v1/tags/高价值/members",
                                  {"member_ids": ["10000001", "10000002"]})
        assert status == 200 and body["count"] == 2, body
        status, body = await call("POST", "/v1/tags/高价值/members",
                                  {"member_ids": ["10000001"], "remove": True})
        assert status == 200 and body["count"] == 1
        status, body = await call("GET", "/v1/tags")
        assert status == 200 and [t["name"] for t in body] == ["高价值"]
        status, body = await call("POST", "/v1/tags/bad:tag/members", {"member_ids": ["1"]})
        assert status == 422 and body["field"] == "tag"
        status, body = await call("POST", "/v1/segments/count", {"where": {"tier": "gold"}})
        assert status == 409 and body["reason"] == "no_segment_data"

    serve(service, scenario)
    assert service.tags.members("高价值").ints.tolist() == [10000002]


def test_an_analyst_may_count_but_not_snapshot(rules_path: Path, tmp_path: Path) -> None:
    async def scenario(call: Callable[..., Awaitable[tuple[int, Any]]]) -> None:
        status, _ = await call("POST", "/v1/segments/count", {"where": {"tier": "gold"}})
        assert status == 200
        status, _ = await call("POST", "/v1/segments/snapshots",
                               {"name": "x", "where": {"tier": "gold"}})
        assert status == 403

    serve(service_for(rules_path, tmp_path), scenario, role="analyst")



def test_coupon_counts_read_the_facts_once_a_minute_and_snapshots_fresh(
        rules_path: Path, tmp_path: Path) -> None:
    import pandas as pd

    calls: list[int] = []

    def facts() -> pd.DataFrame:
        calls.append(1)
        return pd.DataFrame({
            "member_id": ["10000001", "10000002", "10000003"], "template_id": ["t1"] * 3,
            "campaign_id": ["c1"] * 3, "state": ["active", "active", "used"],
            "issued": [dt.date(2026, 6, 25)] * 3, "valid_from": [dt.date(2026, 6, 25)] * 3,
            "expires": [dt.date(2026, 7, 2), dt.date(2026, 7, 20), dt.date(2026, 7, 2)],
            "redeemed": [None, None, dt.date(2026, 6, 28)]})

    service = service_for(rules_path, tmp_path)
    service.coupon_facts = facts
    where = {"holds_coupon": {"expires_within_days": 3}}

    async def scenario(call: Callable[..., Awaitable[tuple[int, Any]]]) -> None:
        for _ in range(2):
            status, body = await call("POST", "/v1/segments/count",
                                      {"where": where, "as_of": AS_OF})
            assert status == 200 and body["count"] == 1, body  # 10000001: expires 07-02
        assert len(calls) == 1
        status, body = await call("POST", "/v1/segments/snapshots",
                                  {"name": "expiring", "where": where, "as_of": AS_OF})
        assert status == 201 and body["count"] == 1
        assert len(calls) == 2
        status, body = await call("POST", "/v1/segments/count", {"where": {"tier": "gold"}})
        assert status == 200 and len(calls) == 2  # no coupon condition, no read

    serve(service, scenario)


def test_a_console_rule_tag_is_saved_and_refreshed_for_another_day(rules_path: Path,
                                                                   tmp_path: Path) -> None:
    service = service_for(rules_path, tmp_path)
    recent = {"orders": {"last": "30d", "gte": 1}}

    async def scenario(call: Callable[..., Awaitable[tuple[int, Any]]]) -> None:
        status, body = await call("POST", "/v1/tags/近期活跃/rule",
                                  {"where": recent, "as_of": AS_OF})
        assert status == 200 and body["kind"] == "rule", body
        saved = body["count"]
        status, counted = await call("POST", "/v1/segments/count",
                                     {"where": recent, "as_of": AS_OF})
        assert counted["count"] == saved > 0
        status, body = await call("POST", "/v1/tags/refresh", {"as_of": "2026-09-30"})
        assert status == 200 and [t["name"] for t in body] == ["近期活跃"], body
        status, later = await call("POST", "/v1/segments/count",
                                   {"where": recent, "as_of": "2026-09-30"})
        assert body[0]["count"] == later["count"] != saved
        status, body = await call("POST", "/v1/segments/count",
                                  {"where": {"tag": "近期活跃"}, "as_of": "2026-09-30"})
        assert body["count"] == later["count"]

    serve(service, scenario)
