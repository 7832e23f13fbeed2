"""``quanpai segment tag ...`` and a preview whose rules use tags, against a real Redis."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
import redis
import yaml

from dispatcher.cli import main
from segmentation.tags import RedisTags

SH = "Asia/Shanghai"


@pytest.fixture
def rules_dir(tmp_path: Path, redis_url: str, redis_client: redis.Redis,
              monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("REDIS_URL", redis_url)
    monkeypatch.setenv("QUANPAI_MERCHANT", "m1")
    pd.DataFrame({"member_id": [1, 2, 3, 4], "tier": ["gold", "normal", "gold", "normal"]}
                 ).to_parquet(tmp_path / "members.parquet")
    tx = pd.DataFrame({"member_id": [1, 3], "amount_fen": [30000, 100],
                       "ts": pd.to_datetime(["2026-11-30 12:00"] * 2).tz_localize(SH)})
    tx.to_parquet(tmp_path / "tx.parquet")
    rules = {"name": "tags", "as_of": "2026-12-03", "transactions": {"path": "tx.parquet"},
             "members": {"path": "members.parquet"},
             "segments": [{"name": "big", "where": {"spend": {"last": "30d", "gte": "100元"}}},
                          {"name": "vip_gold", "where": {"tag": "VIP", "tier": "gold"}},
                          {"name": "not_vip", "where": {"not_tag": "VIP"}}]}
    (tmp_path / "rules.yaml").write_text(yaml.safe_dump(rules, allow_unicode=True), "utf-8")
    return tmp_path


def test_import_gbk_then_preview_and_rule_tag(rules_dir: Path, redis_client: redis.Redis,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    (rules_dir / "tags.csv").write_bytes("会员号,标签\n1,VIP\n2,VIP\n".encode("gbk"))
    assert main(["segment", "tag", "import", str(rules_dir / "tags.csv")]) == 0
    assert main(["segment", "preview", str(rules_dir / "rules.yaml"), "--sample", "0",
                 "--png", str(rules_dir / "p.png")]) == 0
    out = capsys.readouterr().out
    assert "vip_gold (vip_gold): 1" in out and "not_vip (not_vip): 2" in out
    assert main(["segment", "tag", "save", str(rules_dir / "rules.yaml"), "--segment", "big",
                 "--tag", "大客户"]) == 0
    store = RedisTags(client=redis_client, merchant_id="m1")
    assert store.members("大客户").ints.tolist() == [1]
    # member 4 spends 500 yuan: the refresh picks it up
    tx = pd.read_parquet(rules_dir / "tx.parquet")
    more = pd.DataFrame({"member_id": [4], "amount_fen": [50000],
                         "ts": pd.to_datetime(["2026-12-01 12:00"]).tz_localize(SH)})
    pd.concat([tx, more]).to_parquet(rules_dir / "tx.parquet")
    assert main(["segment", "tag", "refresh", "--as-of", "2026-12-03"]) == 0
    assert store.members("大客户").ints.tolist() == [1, 4]
    assert main(["segment", "tag", "list"]) == 0
    listed = capsys.readouterr().out
    assert "大客户\trule (rules.yaml / big)\t2 members" in listed


def test_bad_tag_file_exits_2_and_changes_nothing(rules_dir: Path, redis_client: redis.Redis,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    (rules_dir / "bad.csv").write_text("member_id,tag\n1,VIP\n2,has space\n", "utf-8")
    assert main(["segment", "tag", "import", str(rules_dir / "bad.csv")]) == 2
    err = capsys.readouterr().err
    assert "line 3" in err and len(err.strip().splitlines()) == 1
    assert RedisTags(client=redis_client, merchant_id="m1").tags() == []


def test_refresh_recomputes_console_condition_tags(rules_dir: Path, redis_client: redis.Redis,
                                                   monkeypatch: pytest.MonkeyPatch,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    from segmentation.rule_tags import save_condition_tag

    store = RedisTags(client=redis_client, merchant_id="m1")
    save_condition_tag(store, tag="金卡", where={"tier": "gold"}, members=[])
    assert main(["segment", "tag", "refresh"]) == 2  # no QUANPAI_SEGMENT_RULES: named, exit 2
    assert "金卡" in capsys.readouterr().err
    monkeypatch.setenv("QUANPAI_SEGMENT_RULES", str(rules_dir / "rules.yaml"))
    assert main(["segment", "tag", "refresh", "--as-of", "2026-12-03"]) == 0
    assert store.members("金卡").ints.tolist() == [1, 3]
    assert store.tags()[0].where == '{"tier": "gold"}'
