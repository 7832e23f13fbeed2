"""Segmentation: Parquet transactions -> RFM features, scores and named segments.

Full size is 1M members / ~10M transactions (``segmentation.synthetic``). Our pipeline runs in
a fresh child process, three times: the target applies to the slowest run, and the child's
peak RSS (interpreter and imports included) is the memory figure. ``lifetimes``'
``summary_data_from_transaction_data`` then runs on the same transactions, already in a
DataFrame (its read is not timed, ours is), and its output is compared member by member with
our BG/NBD-convention features: they must agree exactly. Last, the same transactions are loaded
into chDB and the features computed there by SQL (the path for merchants whose transactions
live in ClickHouse), timed and compared with the Parquet path.
"""

from __future__ import annotations

import json
import resource
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow.parquet as pq

from bench.report import Result

SIZES = {"quick": 50_000, "full": 1_000_000}
NAME = "segmentation"


def _child(path: Path, repeat: int) -> None:
    """Runs in the child: time Parquet -> scores + segments, then report peak memory."""
    from segmentation.rfm import scores_from_features
    from segmentation.sources import FileTransactions

    times = []
    segments = 0
    for _ in range(repeat):
        start = time.perf_counter()
        features = FileTransactions(path).features()
        scores = scores_from_features(features)
        times.append(time.perf_counter() - start)
        segments = int(scores.segment.nunique())
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({"times": times, "peak_mb": peak_mb, "members": len(scores),
                      "segments": segments}))


def _chdb_child(path: Path, work: Path) -> None:
    """Runs in a child (one chDB session per process): the same features by SQL in chDB."""
    from infra.clickhouse import ChdbClient
    from segmentation.features import features_frame
    from segmentation.sources import ClickHouseTransactions, FileTransactions

    client = ChdbClient(path=work)
    client.execute("CREATE TABLE tx (member_id Int64, ts DateTime('Asia/Shanghai'), "
                   "amount_fen Int64) ENGINE = MergeTree ORDER BY member_id")
    client.execute(f"INSERT INTO tx SELECT member_id, toDateTime(ts), amount_fen "
                   f"FROM file('{path.resolve()}', Parquet)")
    start = time.perf_counter()
    in_sql = features_frame(ClickHouseTransactions(client=client, table="tx").features())
    seconds = time.perf_counter() - start
    client.close()
    from_file = features_frame(FileTransactions(path).features())
    same = (len(in_sql) == len(from_file)) and all(
        (in_sql[c].to_numpy() == from_file[c].to_numpy()).all()
        for c in ("member_id", "recency_days", "frequency", "monetary_total")
    )
    print(json.dumps({"seconds": seconds, "same": bool(same)}))


def _run_child(*args: str) -> dict[str, Any]:
    out = subprocess.run(
        [sys.executable, "-m", "bench.scenarios.segmentation", *args],
        check=True, capture_output=True, text=True,
    )
    return json.loads(out.stdout.strip().splitlines()[-1])  # type: ignore[no-any-return]


def _ours(path: Path, repeat: int = 3) -> dict[str, Any]:
    return _run_child("rfm", str(path), str(repeat))


def _lifetimes(path: Path) -> tuple[float, int]:
    """lifetimes' summary on the same data; returns (seconds, members that disagree with us)."""
    from lifetimes.utils import summary_data_from_transaction_data

    from segmentation.features import bgnbd_frame
    from segmentation.sources import FileTransactions

    frame = pq.read_table(path, columns=["member_id", "ts", "amount_fen"]).to_pandas()
    # lifetimes groups by naive dates: give it local wall-clock times, as our day numbers are.
    frame["ts"] = frame["ts"].dt.tz_localize(None)
    start = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # its pandas deprecation warnings, once per call
        theirs = summary_data_from_transaction_data(
            frame, "member_id", "ts", monetary_value_col="amount_fen", freq="D"
        )
    seconds = time.perf_counter() - start
    ours = bgnbd_frame(FileTransactions(path).features(first_day_spend=True)).set_index(
        "member_id"
    )
    theirs = theirs.reindex(ours.index)
    differ = np.zeros(len(ours), dtype=bool)
    for column in ("frequency", "recency", "T"):
        differ |= ours[column].to_numpy() != theirs[column].to_numpy()
    differ |= ~np.isclose(ours.monetary_value.to_numpy(), theirs.monetary_value.to_numpy())
    return seconds, int(differ.sum())


def run(*, size: str) -> list[Result]:
    """Generate the data, time our pipeline and lifetimes side by side, report."""
    from segmentation.synthetic import generate

    members = SIZES[size]
    with tempfile.TemporaryDirectory(prefix="quanpai-bench-seg-") as tmp:
        data = generate(members=members, seed=2026, out_dir=Path(tmp))
        ours = _ours(data.transactions)
        lifetimes_s, mismatches = _lifetimes(data.transactions)
        chdb = _run_child("chdb", str(data.transactions), str(Path(tmp) / "chdb"))
    slowest = max(ours["times"])
    label = f"{members:,} members / {data.transaction_count:,} tx"
    return [
        Result(NAME, f"parquet -> RFM scores + segments, slowest of 3 ({label})", slowest, "s",
               target=3.0 if size == "full" else None, better="lower"),
        Result(NAME, "same, fastest of 3", min(ours["times"]), "s"),
        Result(NAME, "peak memory of that process (RSS)", ours["peak_mb"], "MB",
               target=4096.0, better="lower"),
        Result(NAME, "lifetimes summary_data_from_transaction_data (in-memory frame)",
               lifetimes_s, "s"),
        Result(NAME, "speed-up over lifetimes (its time / our slowest)", lifetimes_s / slowest,
               "x", target=10.0 if size == "full" else None, better="higher"),
        Result(NAME, "members whose BG/NBD features differ from lifetimes", mismatches,
               "members", target=0, better="lower"),
        Result(NAME, "same features by SQL GROUP BY in chDB (rows fetched to numpy)",
               chdb["seconds"], "s"),
        Result(NAME, "chDB features equal the Parquet path", 1.0 if chdb["same"] else 0.0,
               "bool", target=1.0, better="higher"),
    ]


if __name__ == "__main__":
    if sys.argv[1] == "chdb":
        _chdb_child(Path(sys.argv[2]), Path(sys.argv[3]))
    else:
        _child(Path(sys.argv[2]), int(sys.argv[3]))
