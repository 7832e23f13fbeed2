"""``quanpai segment rfm|preview|snapshot`` end to end on generated data, and snapshots that
hold exactly what the preview showed."""

from __future__ import annotations

import re
from pathlib import Path

import pandas as pd
import pytest
import yaml

from dispatcher.cli import main
from infra.clickhouse import ClickHouse
from infra.clickhouse_server import ClickHouseServer
from segmentation.errors import InvalidInput
from segmentation.rfm import rfm_scores
from segmentation.segments import EIGHT_CLASSES
from segmentation.snapshot import read_snapshot
from segmentation.synthetic import generate

RFM_COLUMNS = ["member_id", "recency_days", "frequency", "monetary_total", "monetary_avg",
               "r_score", "f_score", "m_score", "rfm_code", "segment"]


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    directory = tmp_path_factory.mktemp("segment-cli")
    generate(members=3000, seed=11, out_dir=directory)
    rules = {
        "name": "cli-test",
        "today": "2026-11-01",
        "transactions": {"path": "transactions.parquet"},
        "members": {"path": "members.parquet"},
        "segments": [
            {"name": "win-back", "name_zh": "挽回",
             "where": {"rfm_segment": ["At Risk", "Can't Lose Them", "Hibernating"],
                       "reachable": ["sms", "wechat"]}},
            {"name": "gold", "where": {"tier": ["gold", "platinum"]}},
        ],
    }
    (directory / "rules.yaml").write_text(yaml.safe_dump(rules, allow_unicode=True), "utf-8")
    return directory


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_rfm_command_writes_the_documented_columns(data: Path, tmp_path: Path,
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "scores.csv"
    code, _, _ = run(capsys, "segment", "rfm", "--transactions", str(data / "transactions.parquet"),
                     "--out", str(out), "--as-of", "2026-10-01", "--bins", "4")
    assert code == 0
    written = pd.read_csv(out, dtype={"rfm_code": str})
    assert list(written.columns) == RFM_COLUMNS
    want = rfm_scores(pd.read_parquet(data / "transactions.parquet"),
                      as_of=pd.Timestamp("2026-10-01").date(), bins=4)
    assert len(written) == len(want)
    for column in ("member_id", "recency_days", "frequency", "monetary_total", "r_score",
                   "f_score", "m_score"):
        assert (written[column].to_numpy() == want[column].to_numpy()).all(), column
    assert list(written.rfm_code) == [str(c) for c in want.rfm_code]
    assert written.r_score.max() == 4


def test_rfm_command_parquet_yuan_csv_and_eight_classes(data: Path, tmp_path: Path,
                                                        capsys: pytest.CaptureFixture[str]) -> None:
    tx = pd.read_parquet(data / "transactions.parquet")
    csv = tmp_path / "yuan.csv"
    tx.rename(columns={"member_id": "vip", "ts": "paid", "amount_fen": "yuan"}).assign(
        yuan=tx.amount_fen / 100).to_csv(csv, index=False)
    out = tmp_path / "scores.parquet"
    code, _, _ = run(capsys, "segment", "rfm", "--transactions", str(csv), "--member-col", "vip",
                     "--time-col", "paid", "--amount-col", "yuan", "--amount-unit", "yuan",
                     "--map", "eight", "--monetary", "avg", "--with-zh", "--out", str(out))
    assert code == 0
    written = pd.read_parquet(out)
    assert list(written.columns) == [*RFM_COLUMNS, "segment_zh"]
    assert written.monetary_total.sum() == tx.amount_fen.sum()
    assert set(written.segment) <= {names[0] for names in EIGHT_CLASSES.values()}
    assert set(written.segment_zh) <= {names[1] for names in EIGHT_CLASSES.values()}


def test_rfm_command_with_an_operators_segment_map(data: Path, tmp_path: Path,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    segment_map = tmp_path / "map.yaml"
    segment_map.write_text("bins: 3\nsegments:\n  - {name: Active, name_zh: 活跃, r: 3}\n"
                           "rest: {name: Others, name_zh: 其他}\n", encoding="utf-8")
    out = tmp_path / "s.csv"
    code, _, _ = run(capsys, "segment", "rfm", "--transactions", str(data / "transactions.parquet"),
                     "--bins", "3", "--map", str(segment_map), "--with-zh", "--out", str(out))
    assert code == 0
    written = pd.read_csv(out)
    assert ((written.segment == "Active") == (written.r_score == 3)).all()
    assert set(written.segment_zh) == {"活跃", "其他"}
    code, _, err = run(capsys, "segment", "rfm", "--transactions",
                       str(data / "transactions.parquet"), "--map", str(segment_map),
                       "--out", str(out))
    assert code == 2 and "bins" in err


@pytest.mark.parametrize(
    ("extra", "words"),
    [
        (["--bins", "7"], "--bins"),
        (["--as-of", "31/10/2026"], "--as-of"),
        (["--amount-col", "paid"], "paid: no such column"),
        (["--amount-unit", "jiao"], "amount_unit"),
        (["--monetary", "max"], "monetary"),
    ],
)
def test_rfm_command_bad_input_exits_2_with_one_line(
    data: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], extra: list[str], words: str
) -> None:
    out = tmp_path / "s.csv"
    code, _, err = run(capsys, "segment", "rfm", "--transactions",
                       str(data / "transactions.parquet"), "--out", str(out), *extra)
    assert code == 2
    assert len(err.strip().splitlines()) == 1 and words in err
    assert not out.exists()


def test_rfm_command_refuses_unknown_output_format(data: Path, tmp_path: Path,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(capsys, "segment", "rfm", "--transactions",
                       str(data / "transactions.parquet"), "--out", str(tmp_path / "s.xlsx"))
    assert code == 2 and "--out" in err
    assert list(tmp_path.iterdir()) == []


def test_preview_then_snapshot_freezes_what_was_previewed(
    data: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    png = tmp_path / "preview.png"
    code, out, _ = run(capsys, "segment", "preview", str(data / "rules.yaml"), "--png", str(png),
                       "--sample", "3")
    assert code == 0
    counts = {m[0]: int(m[1].replace(",", ""))
              for m in re.findall(r"^  ([\w-]+) \(.*\): ([\d,]+)$", out, re.M)}
    assert set(counts) == {"win-back", "gold"} and all(counts.values())
    previewed = re.search(r"audience fingerprint: (\w+)", out)
    assert previewed is not None
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 20_000
    members = pd.read_parquet(data / "members.parquet")
    shown_phones = set(re.findall(r"\b1\d{10}\b", out))
    assert not shown_phones & set(members.phone.dropna())  # phones are masked

    snap = tmp_path / "snap"
    code, out, _ = run(capsys, "segment", "snapshot", str(data / "rules.yaml"), "--out", str(snap))
    assert code == 0
    snapshot = read_snapshot(snap)
    assert snapshot.counts == counts
    assert snapshot.fingerprint == previewed.group(1)
    assert snapshot.name == "cli-test" and str(snapshot.today) == "2026-11-01"
    frozen = snapshot.members[snapshot.members.segment == "win-back"]
    assert frozen.rfm_segment.isin(["At Risk", "Can't Lose Them", "Hibernating"]).all()
    assert (frozen.reachable_sms | frozen.reachable_wechat).all()
    assert {"phone", "wechat_openid", "consent_sms", "reachable_alipay"} <= set(frozen.columns)
    assert snapshot.member_ids("gold") == sorted(snapshot.member_ids("gold"))

    # Never overwritten, and a tampered snapshot is refused.
    code, _, err = run(capsys, "segment", "snapshot", str(data / "rules.yaml"), "--out", str(snap))
    assert code == 2 and "already exists" in err
    snapshot.members.iloc[1:].to_parquet(snap / "members.parquet", index=False)
    with pytest.raises(InvalidInput, match="do not match"):
        read_snapshot(snap)


def test_snapshot_of_one_segment_and_bad_rules(data: Path, tmp_path: Path,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    code, _, _ = run(capsys, "segment", "snapshot", str(data / "rules.yaml"), "--out",
                     str(tmp_path / "gold"), "--segment", "gold")
    assert code == 0
    assert set(read_snapshot(tmp_path / "gold").members.segment) == {"gold"}
    code, _, err = run(capsys, "segment", "snapshot", str(data / "rules.yaml"), "--out",
                       str(tmp_path / "none"), "--segment", "silver")
    assert code == 2 and "silver" in err and not (tmp_path / "none").exists()
    bad = tmp_path / "bad.yaml"
    bad.write_text("transactions: {path: t.parquet}\nsegments:\n"
                   "  - {name: a, where: {tier: diamond}}\n", encoding="utf-8")
    code, _, err = run(capsys, "segment", "preview", str(bad))
    assert code == 2
    assert err.strip().splitlines() == [
        "quanpai: segments[0].where.tier: 'diamond' is not a tier (normal, silver, gold, platinum)"
    ]


def test_rfm_command_from_a_clickhouse_table(
    clickhouse_server: ClickHouseServer, clickhouse_driver: ClickHouse, tmp_path: Path,
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch,
) -> None:
    tx = pd.DataFrame({
        "member_id": [1, 1, 2, 3, 3, 3],
        "ts": pd.to_datetime(["2026-01-01 10:00", "2026-01-01 20:00", "2026-01-03 09:00",
                              "2026-01-02 09:00", "2026-01-04 09:00", "2026-01-05 09:00"])
        .tz_localize("Asia/Shanghai"),
        "amount_fen": [100, 200, 300, 0, 50, 50],
    })
    clickhouse_driver.execute("CREATE TABLE sales (member_id UInt64, ts DateTime('UTC'), "
                              "amount_fen Int64) ENGINE = MergeTree() ORDER BY member_id")
    clickhouse_driver.insert("sales", ["member_id", "ts", "amount_fen"],
                             [(int(m), t.to_pydatetime(), int(a))
                              for m, t, a in tx.itertuples(index=False)])
    monkeypatch.setenv("CLICKHOUSE_URL", clickhouse_server.url.rsplit("/", 1)[0] + "/t")
    out = tmp_path / "scores.csv"
    code, _, _ = run(capsys, "segment", "rfm", "--clickhouse-table", "sales", "--bins", "3",
                     "--out", str(out))
    assert code == 0
    written = pd.read_csv(out, dtype={"rfm_code": str})
    want = rfm_scores(tx, bins=3)
    assert list(written.columns) == RFM_COLUMNS
    for column in RFM_COLUMNS:
        assert [str(v) for v in written[column]] == [str(v) for v in want[column]], column
    code, _, err = run(capsys, "segment", "rfm", "--clickhouse-table", "sales; DROP TABLE sales",
                       "--out", str(out))
    assert code == 2 and "table" in err
