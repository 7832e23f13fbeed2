"""The one-line error contract of every ``quanpai`` command, run as a real process: a service
that is down, a port that is taken, a path that cannot be used, a bad number, a file in an
unexpected encoding, a timestamp that does not parse. Each gives exit code 2, one line on
stderr naming what is wrong, and no traceback. Files exported from Excel in China (GBK,
GB18030, UTF-8 with a BOM) are read."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest
import yaml

from segmentation.synthetic import generate

CLOSED = "redis://127.0.0.1:1/0"


def quanpai(*args: str, cwd: Path, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "dispatcher.cli", *args], cwd=cwd,
                          env={**os.environ, "QUANPAI_VAR": str(cwd / "var"), **env},
                          capture_output=True, text=True, timeout=120)


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    directory = tmp_path_factory.mktemp("cli-errors")
    generate(members=200, seed=5, out_dir=directory)
    transactions = pd.read_parquet(directory / "transactions.parquet").head(1500)
    transactions["store_name"] = "上海南京路店"
    for codec in ("gbk", "gb18030", "utf-8-sig"):
        transactions.to_csv(directory / f"tx-{codec}.csv", index=False, encoding=codec)
        rules = {"name": "编码测试", "today": "2026-11-01",
                 "transactions": {"path": f"tx-{codec}.csv"},
                 "segments": [{"name": "win-back", "name_zh": "挽回客户",
                               "where": {"rfm_segment": ["At Risk", "Hibernating",
                                                         "Can't Lose Them"]}}]}
        text = yaml.safe_dump(rules, allow_unicode=True)
        (directory / f"rules-{codec}.yaml").write_bytes(text.encode(codec))
    broken = transactions.astype({"ts": str})
    broken.loc[7, "ts"] = "二〇二六年十一月"
    broken.to_csv(directory / "tx-bad-time.csv", index=False, encoding="gbk")
    (directory / "existing.txt").write_text("x")
    (directory / "bogus.toml").write_text('[sms]\nquiet_hour = "22:00-08:00"\n')
    return directory


@pytest.fixture(scope="module")
def taken_port() -> Iterator[int]:
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        yield holder.getsockname()[1]


FAILURES: dict[str, tuple[list[str], dict[str, str], str]] = {
    "campaign list, Redis down": (["campaign", "list"], {"REDIS_URL": CLOSED},
                                  "Redis is unreachable"),
    "campaign status, Redis down": (["campaign", "status", "c1"], {"REDIS_URL": CLOSED},
                                    "Redis is unreachable"),
    "campaign run, Redis down": (["campaign", "run", "c1"], {"REDIS_URL": CLOSED},
                                 "Redis is unreachable"),
    "roi, Redis down": (["roi"], {"REDIS_URL": CLOSED}, "Redis is unreachable"),
    "loader, Redis down": (["loader", "--once"], {"REDIS_URL": CLOSED},
                           "Redis is unreachable"),
    "roi, ClickHouse down": (["roi"], {"CLICKHOUSE_URL": "clickhouse://127.0.0.1:1/db",
                                       "REDIS_URL": CLOSED}, "ClickHouse at 127.0.0.1:1"),
    "data, --out is a file": (["data", "generate", "--members", "10", "--out", "existing.txt"],
                              {}, "existing.txt"),
    "data, negative seed": (["data", "generate", "--members", "10", "--out", "d", "--seed",
                             "-1"], {}, "--seed"),
    "data, a billion members": (["data", "generate", "--members", "1000000000", "--out", "d"],
                                {}, "--members"),
    "services, unwritable QUANPAI_VAR": (["services", "up"], {"QUANPAI_VAR": "/proc/quanpai"},
                                         "/proc/quanpai"),
    "unknown TOML key": (["campaign", "list"], {"QUANPAI_CONFIG": "bogus.toml"},
                         "sms.quiet_hours"),
    "invalid merchant": (["campaign", "list"], {"QUANPAI_MERCHANT": "shop one"},
                         "QUANPAI_MERCHANT"),
    "unparseable timestamp names the row": (
        ["segment", "rfm", "--transactions", "tx-bad-time.csv", "--out", "s.csv"], {},
        "row 8"),
    "GBK rules read as UTF-8": (
        ["--encoding", "utf-8", "segment", "preview", "rules-gbk.yaml"], {}, "rules-gbk.yaml"),
    "unknown --encoding": (["--encoding", "latin-99", "campaign", "list"], {}, "latin-99"),
    "unknown command": (["campain", "list"], {}, "invalid choice: 'campain'"),
    "missing argument": (["campaign", "create"], {}, "quanpai campaign create --help"),
    "unknown option": (["roi", "--bogus"], {}, "--bogus"),
    "not a number": (["data", "generate", "--members", "ten", "--out", "d"], {}, "'ten'"),
}


@pytest.mark.parametrize("case", list(FAILURES))
def test_failure_is_one_line_exit_2(case: str, data: Path, taken_port: int) -> None:
    argv, env, wanted = FAILURES[case]
    done = quanpai(*argv, cwd=data, **env)
    lines = done.stderr.strip().splitlines()
    assert done.returncode == 2, (case, done.stderr[-2000:])
    assert len(lines) == 1 and "Traceback" not in done.stderr, (case, done.stderr[-2000:])
    assert lines[0].startswith("quanpai: ") and wanted in lines[0], (case, lines[0])


def test_serve_on_a_taken_port_is_one_line(data: Path, taken_port: int,
                                           redis_url: str) -> None:
    done = quanpai("serve", "--port", str(taken_port), cwd=data, REDIS_URL=redis_url)
    assert done.returncode == 2 and len(done.stderr.strip().splitlines()) == 1
    assert str(taken_port) in done.stderr and "Traceback" not in done.stderr


@pytest.mark.parametrize("codec", ["gbk", "gb18030", "utf-8-sig"])
def test_chinese_csv_and_yaml_are_read(codec: str, data: Path, tmp_path: Path) -> None:
    out = tmp_path / "scores.csv"
    done = quanpai("segment", "rfm", "--transactions", f"tx-{codec}.csv", "--out", str(out),
                   cwd=data)
    assert done.returncode == 0, done.stderr[-2000:]
    scores = pd.read_csv(out)
    assert len(scores) == pd.read_csv(data / f"tx-{codec}.csv", encoding=codec)[
        "member_id"].nunique()
    done = quanpai("segment", "preview", f"rules-{codec}.yaml", "--png", str(tmp_path / "p.png"),
                   cwd=data)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "挽回客户" in done.stdout and "Glyph" not in done.stderr
    # the same file named with --encoding reads the same
    done = quanpai("--encoding", codec, "segment", "rfm", "--transactions", f"tx-{codec}.csv",
                   "--out", str(out), cwd=data)
    assert done.returncode == 0, done.stderr[-2000:]
