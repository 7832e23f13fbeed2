"""Sources: Parquet and CSV files with the merchant's column names, and ClickHouse tables (chDB and
the 18.16 server) where the per-member aggregation runs as SQL. Each must give exactly the
features of the in-memory computation, which test_rfm_definitions checks against a groupby."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from infra.clickhouse import ClickHouse
from segmentation.errors import InvalidInput
from segmentation.features import MemberFeatures, bgnbd_frame, features_frame
from segmentation.rfm import transaction_features
from segmentation.sources import (
    ClickHouseTransactions,
    FileTransactions,
    FrameTransactions,
    TransactionColumns,
)

SH = "Asia/Shanghai"


@pytest.fixture(scope="module")
def transactions() -> pd.DataFrame:
    rng = np.random.default_rng(5)
    n = 3000
    start = int(pd.Timestamp("2024-01-01", tz=SH).timestamp())
    return pd.DataFrame({
        "cust": rng.integers(1, 400, n).astype(np.int64),
        "paid_at": pd.to_datetime(start + rng.integers(0, 90 * 86_400, n), unit="s", utc=True)
        .tz_convert(SH),
        "fen": rng.integers(0, 30_000, n).astype(np.int64),
    })


def same(a: MemberFeatures, b: MemberFeatures) -> None:
    fa, fb = features_frame(a), features_frame(b)
    assert len(fa) == len(fb) > 0
    assert list(fa.member_id) == list(fb.member_id)
    for column in ("recency_days", "frequency", "monetary_total"):
        assert (fa[column].to_numpy() == fb[column].to_numpy()).all(), column
    assert a.as_of_day == b.as_of_day
    if a.first_day_spend is not None and b.first_day_spend is not None:
        ba, bb = bgnbd_frame(a), bgnbd_frame(b)
        assert np.allclose(ba.drop(columns="member_id"), bb.drop(columns="member_id"))


COLUMNS = TransactionColumns(member="cust", time="paid_at", amount="fen")


def test_parquet_and_csv_files_with_mapped_columns(
    tmp_path: Path, transactions: pd.DataFrame
) -> None:
    want = transaction_features(transactions, member_col="cust", time_col="paid_at",
                                amount_col="fen")
    same(FrameTransactions(transactions, COLUMNS).features(), want)
    parquet = tmp_path / "tx.parquet"
    transactions.assign(extra="x").to_parquet(parquet)
    same(FileTransactions(parquet, COLUMNS).features(), want)
    csv = tmp_path / "tx.csv"
    transactions.to_csv(csv, index=False)
    same(FileTransactions(csv, COLUMNS).features(), want)
    yuan = tmp_path / "yuan.csv"
    transactions.assign(fen=transactions.fen / 100).to_csv(yuan, index=False)
    yuan_columns = TransactionColumns(member="cust", time="paid_at", amount="fen",
                                      amount_unit="yuan")
    same(FileTransactions(yuan, yuan_columns).features(), want)


def test_parquet_naive_local_timestamps_and_dates(tmp_path: Path) -> None:
    table = pa.table({
        "member_id": pa.array([1, 1, 2], pa.int64()),
        "ts": pa.array([dt.datetime(2024, 3, 1, 23, 30), dt.datetime(2024, 3, 2, 0, 30),
                        dt.datetime(2024, 3, 2, 12, 0)], pa.timestamp("s")),
        "amount_fen": pa.array([100, 200, 300], pa.int64()),
    })
    pq.write_table(table, tmp_path / "naive.parquet")
    got = features_frame(FileTransactions(tmp_path / "naive.parquet").features())
    assert list(got.frequency) == [2, 1]
    dates = table.set_column(1, "ts", pa.array([dt.date(2024, 3, 1)] * 3, pa.date32()))
    pq.write_table(dates, tmp_path / "dates.parquet")
    got = features_frame(FileTransactions(tmp_path / "dates.parquet").features())
    assert list(got.frequency) == [1, 1]
    assert list(got.monetary_total) == [300, 300]


def test_file_errors_name_the_column_or_file(tmp_path: Path, transactions: pd.DataFrame) -> None:
    parquet = tmp_path / "tx.parquet"
    transactions.to_parquet(parquet)
    with pytest.raises(InvalidInput) as missing:
        FileTransactions(parquet, TransactionColumns(member="customer")).features()
    assert missing.value.field == "customer"
    with pytest.raises(InvalidInput) as nofile:
        FileTransactions(tmp_path / "none.parquet").features()
    assert "none.parquet" in nofile.value.field
    with pytest.raises(InvalidInput) as bad_kind:
        FileTransactions(tmp_path / "tx.xlsx").features()
    assert "expected a .parquet or .csv" in str(bad_kind.value)


def load_clickhouse(client: ClickHouse, transactions: pd.DataFrame, *, yuan: bool) -> None:
    amount_type = "Float64" if yuan else "Int64"
    client.execute(
        f"CREATE TABLE tx (cust UInt64, paid_at DateTime('UTC'), fen {amount_type}) "
        "ENGINE = MergeTree() ORDER BY cust"
    )
    rows = [
        (int(c), t.to_pydatetime(), float(f) / 100 if yuan else int(f))
        for c, t, f in zip(transactions.cust, transactions.paid_at, transactions.fen, strict=True)
    ]
    client.insert("tx", ["cust", "paid_at", "fen"], rows)


def check_clickhouse(client: ClickHouse, transactions: pd.DataFrame) -> None:
    load_clickhouse(client, transactions, yuan=False)
    source = ClickHouseTransactions(client=client, table="tx", columns=COLUMNS)
    for as_of in (None, dt.date(2024, 2, 10), dt.date(2024, 5, 1)):
        want = transaction_features(transactions, as_of=as_of, member_col="cust",
                                    time_col="paid_at", amount_col="fen", first_day_spend=True)
        same(source.features(as_of=as_of, first_day_spend=True), want)
    client.execute("DROP TABLE tx")
    load_clickhouse(client, transactions, yuan=True)
    yuan = ClickHouseTransactions(
        client=client, table="tx",
        columns=TransactionColumns(member="cust", time="paid_at", amount="fen", amount_unit="yuan"),
    )
    same(yuan.features(), transaction_features(transactions, member_col="cust",
                                               time_col="paid_at", amount_col="fen"))
    with pytest.raises(InvalidInput) as bad:
        ClickHouseTransactions(client=client, table="tx; DROP TABLE tx")
    assert bad.value.field == "table"


def test_clickhouse_server_18_aggregates_in_sql(clickhouse_driver: ClickHouse,
                                                transactions: pd.DataFrame) -> None:
    check_clickhouse(clickhouse_driver, transactions)


def test_chdb_aggregates_in_sql(chdb_client: ClickHouse, transactions: pd.DataFrame) -> None:
    check_clickhouse(chdb_client, transactions)
