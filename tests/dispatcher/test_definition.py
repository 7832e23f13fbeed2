"""Campaign definitions: one validator for YAML files and JSON bodies, errors naming the field,
and a launch that checks everything before writing anything."""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pandas as pd
import pytest
import redis

from dispatcher.audience import load_audience
from dispatcher.campaigns import CampaignStore
from dispatcher.definition import (
    Audience,
    definition_from_json,
    definition_to_json,
    load_definition,
    parse_definition,
)
from dispatcher.errors import DefinitionError
from dispatcher.launch import launch_campaign
from dispatcher.operations import build_launch_deps
from infra.settings import load_settings
from segmentation.snapshot import Snapshot, fingerprint, write_snapshot

YAML = """\
name: 双十二唤醒
audience: {snapshot: snap, segment: 沉睡会员}
coupon: {threshold_fen: 10000, discount_fen: 1500, valid_days: 30}
channels: [wechat, sms]
content: {store: 南京西路店, link: "pages/coupon/index"}
holdout_permille: 100
start_at: "2026-12-12T10:00:00+08:00"
budget: {max_coupons: 50000, max_cost_fen: 75000000}
frequency_cap: {messages: 1, days: 3}
send_rate_per_s: 500
"""


def members(n: int) -> pd.DataFrame:
    return pd.DataFrame({
        "member_id": [f"M{i:05d}" for i in range(n)], "name": ["韩梅梅"] * n,
        "phone": [f"139{i:08d}" for i in range(n)], "consent_sms": [True] * n,
    })


def test_yaml_file_parses_every_field(tmp_path: Path) -> None:
    path = tmp_path / "c.yaml"
    path.write_text(YAML, encoding="utf-8")
    d = load_definition(path)
    assert d.name == "双十二唤醒"
    assert d.audience == Audience(snapshot=tmp_path.resolve() / "snap", segment="沉睡会员")
    assert d.channels == ("wechat", "sms")
    assert d.content == {"store": "南京西路店", "link": "pages/coupon/index"}
    assert (d.budget.max_coupons, d.budget.max_cost_fen) == (50000, 75000000)
    assert (d.frequency_cap and (d.frequency_cap.messages, d.frequency_cap.days)) == (1, 3)
    assert d.start_at == datetime(2026, 12, 12, 2, 0, tzinfo=UTC)
    # The JSON form (the HTTP API) goes through the same validator and round-trips.
    again = definition_from_json(json.dumps(definition_to_json(d)).encode())
    assert again == d


def test_gbk_file_with_auto_channels(tmp_path: Path) -> None:
    path = tmp_path / "c.yaml"
    path.write_bytes("name: 会员日\naudience: {snapshot: s.parquet}\nchannels: auto\n"
                     .encode("gbk"))
    d = load_definition(path)
    assert d.name == "会员日" and d.automatic


@pytest.mark.parametrize(("change", "field"), [
    ({"channels": ["wechat", "fax"]}, "channels[1]"),
    ({"budget": {"max_cost_fen": -5}}, "budget.max_cost_fen"),
    ({"budget": {"max_coupons": "many"}}, "budget.max_coupons"),
    ({"holdout_permille": 900}, "holdout_permille"),
    ({"start_at": "2026-12-12T10:00:00"}, "start_at"),
    ({"frequency_cap": {"messages": 1}}, "frequency_cap"),
    ({"coupon": {"threshold_fen": 1000, "discount_fen": 1000}}, "coupon.discount_fen"),
    ({"content": {"colour": "red"}}, "content.colour"),
    ({"name": ""}, "name"),
    ({"audience": {"segment": "x"}}, "audience"),
    ({"audience": {"rules": "r.yaml"}}, "audience.segment"),
    ({"surprise": 1}, "surprise"),
])
def test_errors_name_the_field(change: dict[str, object], field: str) -> None:
    data: dict[str, object] = {"name": "t", "audience": {"snapshot": "s"}, **change}
    with pytest.raises(DefinitionError) as caught:
        parse_definition(data)
    assert caught.value.field == field


def write_snap(directory: Path, frame: pd.DataFrame) -> Path:
    frame = frame.assign(segment="沉睡会员")
    snap = Snapshot(name="r", rules_sha256="0" * 64, today=dt.date(2026, 12, 1),
                    as_of=dt.date(2026, 12, 1), taken_at=datetime.now(UTC),
                    counts={"沉睡会员": len(frame)}, fingerprint=fingerprint(frame),
                    members=frame)
    return write_snapshot(snap, directory)


def test_snapshot_directory_is_verified_against_its_manifest(tmp_path: Path) -> None:
    path = write_snap(tmp_path / "snap", members(5))
    assert len(load_audience(Audience(snapshot=path, segment="沉睡会员"))) == 5
    with pytest.raises(DefinitionError) as caught:
        load_audience(Audience(snapshot=path, segment="高价值"))
    assert caught.value.field == "audience.segment"
    # An edited member file no longer matches the fingerprint the manifest holds.
    members(6).assign(segment="沉睡会员").to_parquet(path / "members.parquet")
    with pytest.raises(DefinitionError, match="do not match the manifest"):
        load_audience(Audience(snapshot=path, segment="沉睡会员"))


def test_launch_checks_before_writing(redis_url: str, redis_client: redis.Redis) -> None:
    settings = load_settings({"REDIS_URL": redis_url, "SMS_QUIET_HOURS": "off"})
    deps = build_launch_deps(settings)
    base = parse_definition({"name": "t", "audience": {"snapshot": "-"}, "channels": ["sms"]})
    now = datetime.now(UTC)
    with pytest.raises(DefinitionError) as caught:
        launch_campaign(base, members(0), deps=deps, now=now)
    assert caught.value.field == "audience"
    long_title = replace(base, coupon=replace(base.coupon, name="超长的优惠券标题" * 5))
    with pytest.raises(DefinitionError) as caught:
        launch_campaign(long_title, members(3), deps=deps, now=now)
    assert caught.value.field == "content.sms.variables.coupon"
    assert redis_client.dbsize() == 0

    later = replace(base, start_at=now + timedelta(hours=1))
    campaign_id = launch_campaign(later, members(3), deps=deps, now=now)
    campaign = CampaignStore(client=redis_client).get(campaign_id)
    assert (campaign.status, campaign.total_members, campaign.total_batches) == \
        ("scheduled", 3, 1)
    # The batch waits in the broker's delay queue until the start time.
    assert redis_client.hlen("quanpai-dq:campaigns.DQ.msgs") == 1


def test_rules_audience_is_evaluated_at_launch_and_frozen(tmp_path: Path) -> None:
    import yaml

    from segmentation.snapshot import read_snapshot
    from segmentation.synthetic import generate

    generate(members=300, seed=3, out_dir=tmp_path)
    rules = {"name": "r", "today": "2026-11-01",
             "transactions": {"path": "transactions.parquet"},
             "members": {"path": "members.parquet"},
             "segments": [{"name": "金卡", "where": {"tier": ["gold", "platinum"]}}]}
    (tmp_path / "rules.yaml").write_text(yaml.safe_dump(rules, allow_unicode=True), "utf-8")
    (tmp_path / "c.yaml").write_text("name: 金卡日\naudience: {rules: rules.yaml, segment: 金卡}\n",
                                     encoding="utf-8")
    definition = load_definition(tmp_path / "c.yaml")
    frozen = tmp_path / "frozen"
    got = load_audience(definition.audience, freeze_into=frozen)
    tiers = pd.read_parquet(tmp_path / "members.parquet").set_index("member_id")["tier"]
    assert 0 < len(got) < 300
    assert set(tiers[got["member_id"]]) <= {"gold", "platinum"}
    assert sorted(read_snapshot(frozen).members["member_id"]) == sorted(got["member_id"])
    with pytest.raises(DefinitionError) as caught:
        load_audience(replace(definition.audience, segment="银卡"))
    assert caught.value.field == "audience.rules"
