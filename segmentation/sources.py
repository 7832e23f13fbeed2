"""Where transactions and members come from: Parquet or CSV files, or ClickHouse tables.

Column names are the merchant's (``TransactionColumns`` maps them), amounts come in fen or yuan.
Files are read with pyarrow, only the three columns RFM needs, straight into numpy arrays. In
ClickHouse the per-member aggregation runs as SQL (``GROUP BY member``), so a merchant with 100M
transactions ships one row per member, never the transactions. The SQL keeps to what
ClickHouse 18.16 accepts (no DateTime64, no window functions) so the same query runs on chDB.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol
from zoneinfo import ZoneInfo

import numpy as np
import numpy.typing as npt
import pandas as pd
import pyarrow as pa
import pyarrow.csv as pa_csv
import pyarrow.parquet as pq

from infra.clickhouse import ClickHouse
from infra.errors import ClickHouseError
from infra.textfiles import detect_encoding
from segmentation.aggregates import RuleFeatures, TextColumn, TransactionArrays, array_rule_features
from segmentation.errors import InvalidInput, SourceUnavailable
from segmentation.features import MemberFeatures, compute_features
from segmentation.local_dates import DEFAULT_TZ, day_number, epoch_to_days, series_to_days
from segmentation.rfm import AmountUnit, amounts_in_fen, transaction_features
from segmentation.sql_features import (
    member_array,
    quote,
    rule_features_from_rows,
    rule_features_sql,
)
from segmentation.windows import TxFilter

_IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)?$")


@dataclass(frozen=True)
class TransactionColumns:
    """Which of the merchant's columns hold the member, the time and the amount."""

    member: str = "member_id"
    time: str = "ts"
    amount: str = "amount_fen"
    amount_unit: AmountUnit = "fen"
    # read only when a rule filters on them (stores, categories, skus)
    store: str = "store_id"
    category: str = "category"
    sku: str = "sku"

    def text_column(self, name: str) -> str:
        """The merchant's column for ``store``, ``category`` or ``sku``."""
        return {"store": self.store, "category": self.category, "sku": self.sku}[name]

    def __post_init__(self) -> None:
        if self.amount_unit not in ("fen", "yuan"):
            raise InvalidInput("amount_unit", f"must be fen or yuan, got {self.amount_unit!r}")


class SegmentSource(Protocol):
    """Where a segment's transactions live: anything that reduces them to per-member features."""

    def features(self, *, as_of: dt.date | None = None,
                 first_day_spend: bool = False) -> MemberFeatures:
        """Per-member features as of ``as_of`` (default: the last transaction day)."""
        ...

    def rule_features(self, *, as_of: dt.date, filters: Sequence[TxFilter]) -> RuleFeatures:
        """Features as of ``as_of`` and the spend/orders columns of each filter."""
        ...


def _file_format(path: Path) -> str:
    suffix = path.suffix.lower()
    if suffix in (".parquet", ".pq"):
        return "parquet"
    if suffix in (".csv", ".txt"):
        return "csv"
    raise InvalidInput(str(path), "expected a .parquet or .csv file")


def file_columns(path: Path) -> list[str]:
    """The column names of a Parquet or CSV file (reads only its header or schema)."""
    kind = _file_format(path)
    if not path.is_file():
        raise InvalidInput(str(path), "no such file")
    try:
        if kind == "parquet":
            return list(pq.read_schema(path).names)
        return [str(c) for c in pd.read_csv(path, nrows=0,
                                            encoding=detect_encoding(path)).columns]
    except (OSError, ValueError, pa.ArrowException) as exc:
        raise InvalidInput(str(path), f"cannot read: {exc}") from None


def read_table(path: Path, columns: list[str] | None = None) -> pa.Table:
    """Read the named columns (all if None) of a Parquet or CSV file; errors name the column."""
    kind = _file_format(path)
    available = file_columns(path)
    for column in columns or []:
        if column not in available:
            raise InvalidInput(column, f"no such column in {path.name} "
                               f"(columns: {', '.join(available)})")
    try:
        if kind == "parquet":
            return pq.read_table(path, columns=columns)
        convert = pa_csv.ConvertOptions(include_columns=columns) if columns else None
        codec = detect_encoding(path)  # Excel in China writes GBK or UTF-8 with a BOM
        read = None if codec in ("utf-8", "utf-8-sig") else pa_csv.ReadOptions(encoding=codec)
        return pa_csv.read_csv(path, read_options=read, convert_options=convert)
    except (OSError, pa.ArrowException) as exc:
        raise InvalidInput(str(path), f"cannot read: {exc}") from None


def _arrow_days(column: pa.ChunkedArray, *, tz: ZoneInfo, field: str) -> npt.NDArray[np.int32]:
    if column.null_count:
        raise InvalidInput(field, f"has {column.null_count} empty values")
    kind = column.type
    if pa.types.is_timestamp(kind):
        raw: npt.NDArray[np.int64] = np.asarray(column.cast(pa.int64()).to_numpy(), np.int64)
        if kind.tz is not None:
            return epoch_to_days(raw, unit=kind.unit, tz=tz)
        per_day = 86_400 * {"s": 1, "ms": 1_000, "us": 1_000_000, "ns": 1_000_000_000}[kind.unit]
        naive: npt.NDArray[np.int32] = (raw // per_day).astype(np.int32)
        return naive  # naive: already local wall-clock time
    if pa.types.is_date32(kind):
        return np.asarray(column.cast(pa.int32()).to_numpy(), dtype=np.int32)
    return series_to_days(column.to_pandas(), tz=tz, field=field)


def _text_names(filters: Sequence[TxFilter]) -> set[str]:
    return set().union(*(f.columns_needed() for f in filters)) if filters else set()


def arrow_arrays(table: pa.Table, columns: TransactionColumns, *, timezone: ZoneInfo,
                 text: Collection[str] = ()) -> TransactionArrays:
    """Aligned arrays of an Arrow table of transactions (amounts in fen); ``text`` names the
    store/category/sku columns to encode too."""
    members = table.column(columns.member)
    if members.null_count:
        raise InvalidInput(columns.member, f"has {members.null_count} empty values")
    days = _arrow_days(table.column(columns.time), tz=timezone, field=columns.time)
    amount = table.column(columns.amount)
    if columns.amount_unit == "fen" and pa.types.is_integer(amount.type) and not amount.null_count:
        amounts = amount.to_numpy().astype(np.int64, copy=False)
    else:
        amounts = amounts_in_fen(amount.to_pandas(), unit=columns.amount_unit, field=columns.amount)
    if len(amounts) and int(amounts.min()) < 0:
        raise InvalidInput("amount", "has negative amounts; net refunds into their orders first")
    encoded = {name: TextColumn.of(table.column(columns.text_column(name))) for name in text}
    return TransactionArrays(members.to_numpy(), days, amounts, encoded)


def arrow_features(
    table: pa.Table,
    columns: TransactionColumns,
    *,
    as_of: dt.date | None = None,
    timezone: ZoneInfo = DEFAULT_TZ,
    first_day_spend: bool = False,
) -> MemberFeatures:
    """Per-member features of an Arrow table of transactions (the fast path for files)."""
    arrays = arrow_arrays(table, columns, timezone=timezone)
    return compute_features(
        arrays.member_ids, arrays.days, arrays.amounts,
        as_of_day=None if as_of is None else day_number(as_of),
        first_day_spend=first_day_spend,
    )


@dataclass(frozen=True)
class FrameTransactions:
    """Transactions already in a pandas DataFrame (the in-memory source: tests, notebooks)."""

    frame: pd.DataFrame
    columns: TransactionColumns = TransactionColumns()
    timezone: ZoneInfo = DEFAULT_TZ

    def features(self, *, as_of: dt.date | None = None,
                 first_day_spend: bool = False) -> MemberFeatures:
        """Reduce the frame's transactions per member."""
        return transaction_features(
            self.frame, as_of=as_of, member_col=self.columns.member, time_col=self.columns.time,
            amount_col=self.columns.amount, amount_unit=self.columns.amount_unit,
            timezone=self.timezone, first_day_spend=first_day_spend,
        )

    def rule_features(self, *, as_of: dt.date, filters: Sequence[TxFilter]) -> RuleFeatures:
        """Features and window aggregates of the frame's transactions."""
        wanted = [self.columns.member, self.columns.time, self.columns.amount,
                  *(self.columns.text_column(n) for n in sorted(_text_names(filters)))]
        for column in wanted:
            if column not in self.frame.columns:
                raise InvalidInput(column, "no such column in the transactions")
        table = pa.Table.from_pandas(self.frame[list(dict.fromkeys(wanted))],
                                     preserve_index=False)
        arrays = arrow_arrays(table, self.columns, timezone=self.timezone,
                              text=_text_names(filters))
        return array_rule_features(arrays, filters, as_of_day=day_number(as_of))


@dataclass(frozen=True)
class FileTransactions:
    """Transactions in a Parquet or CSV file."""

    path: Path
    columns: TransactionColumns = TransactionColumns()
    timezone: ZoneInfo = DEFAULT_TZ

    def features(self, *, as_of: dt.date | None = None,
                 first_day_spend: bool = False) -> MemberFeatures:
        """Read the three needed columns and reduce them per member."""
        needed = list(dict.fromkeys([self.columns.member, self.columns.time, self.columns.amount]))
        table = read_table(self.path, needed)
        return arrow_features(table, self.columns, as_of=as_of, timezone=self.timezone,
                              first_day_spend=first_day_spend)

    def arrays(self, text: set[str]) -> TransactionArrays:
        """The file's transactions as arrays, with the named text columns encoded."""
        needed = [self.columns.member, self.columns.time, self.columns.amount,
                  *(self.columns.text_column(n) for n in sorted(text))]
        table = read_table(self.path, list(dict.fromkeys(needed)))
        return arrow_arrays(table, self.columns, timezone=self.timezone, text=text)

    def rule_features(self, *, as_of: dt.date, filters: Sequence[TxFilter]) -> RuleFeatures:
        """Features and window aggregates of the file's transactions."""
        return array_rule_features(self.arrays(_text_names(filters)), filters,
                                   as_of_day=day_number(as_of))


def checked_identifier(name: str, field: str) -> str:
    """``name`` if it is a plain (optionally database-qualified) ClickHouse name."""
    if not _IDENTIFIER.match(name):
        raise InvalidInput(field, f"{name!r} is not a plain column or table name")
    return name


class ClickHouseTransactions:
    """Transactions in a ClickHouse table; aggregated per member inside ClickHouse."""

    def __init__(self, *, client: ClickHouse, table: str,
                 columns: TransactionColumns = TransactionColumns(),
                 timezone: ZoneInfo = DEFAULT_TZ, final: bool = False,
                 merchant_id: str | None = None) -> None:
        self._client = client
        self._table = checked_identifier(table, "table")
        # FROM clause and row filter of every query: FINAL collapses a ReplacingMergeTree's
        # not-yet-merged duplicates; a shared table is narrowed to one merchant
        self._from = f"{self._table} FINAL" if final else self._table
        self._rows = "1" if merchant_id is None else f"merchant_id = {quote(merchant_id)}"
        self._member = checked_identifier(columns.member, "member_col")
        self._time = checked_identifier(columns.time, "time_col")
        self._amount = checked_identifier(columns.amount, "amount_col")
        self._unit = columns.amount_unit
        self._tz = timezone
        self._columns = columns
        # what FeatureCache keys this source's results by
        self.cache_key = ("clickhouse", id(client), self._from, self._rows, columns, timezone.key)

    def _query(self, sql: str) -> list[tuple[Any, ...]]:
        try:
            return self._client.query(sql)
        except ClickHouseError as exc:
            raise SourceUnavailable(f"ClickHouse table {self._table}: {exc}") from exc

    def _fen(self) -> str:
        if self._unit == "fen":
            return f"toInt64({self._amount})"
        # Half away from zero, like the file path; negative amounts are refused below anyway.
        return f"toInt64(floor(toFloat64({self._amount}) * 100 + 0.5))"

    def _day(self) -> str:
        return f"toUInt32(toDate({self._time}, '{self._tz.key}'))"

    def _newest_and_count(self, day: str) -> tuple[int, int]:
        """The newest local day and the row count; negative amounts are refused."""
        (newest, negatives, rows), = self._query(
            f"SELECT max({day}), countIf({self._amount} < 0), count() FROM {self._from} "
            f"WHERE {self._rows}"
        )
        if int(negatives):
            raise InvalidInput("amount", f"{negatives} negative amounts in {self._table}; "
                               "net refunds into their orders first")
        return int(newest), int(rows)

    def features(self, *, as_of: dt.date | None = None,
                 first_day_spend: bool = False) -> MemberFeatures:
        """Per-member features computed by one GROUP BY query in ClickHouse."""
        day = self._day()
        last_day, rows = self._newest_and_count(day)
        if as_of is None:
            if not int(rows):
                raise InvalidInput("transactions", f"{self._table} is empty; give an as-of date")
            as_of_day = last_day
        else:
            as_of_day = day_number(as_of)
        first_spend = ", argMin(spend, day)" if first_day_spend else ""
        result = self._query(
            f"SELECT member, count(), min(day), max(day), sum(spend){first_spend} FROM ("
            f" SELECT {self._member} AS member, {day} AS day, sum({self._fen()}) AS spend"
            f" FROM {self._from} WHERE {day} <= {as_of_day} AND {self._rows}"
            f" GROUP BY member, day"
            f") GROUP BY member ORDER BY member"
        )
        return _features_from_rows(result, as_of_day, first_day_spend=first_day_spend)

    def rule_features(self, *, as_of: dt.date, filters: Sequence[TxFilter]) -> RuleFeatures:
        """Features and window aggregates in one GROUP BY member query (see ``sql_features``)."""
        day = self._day()
        newest, rows = self._newest_and_count(day)
        text = {name: checked_identifier(self._columns.text_column(name), f"{name}_col")
                for name in _text_names(filters)}
        sql = rule_features_sql(table=self._from, rows=self._rows, member=self._member, day=day,
                                fen=self._fen(), text=text, filters=filters,
                                as_of_day=day_number(as_of))
        return rule_features_from_rows(self._query(sql), filters, as_of_day=day_number(as_of),
                                       newest_day=newest if rows else None)


def _features_from_rows(rows: list[tuple[Any, ...]], as_of_day: int, *,
                        first_day_spend: bool) -> MemberFeatures:
    member_ids = member_array(rows)
    frequency = np.asarray([r[1] for r in rows], dtype=np.int64)
    return MemberFeatures(
        member_id=member_ids,
        frequency=frequency,
        monetary_total=np.asarray([r[4] for r in rows], dtype=np.int64),
        first_day=np.asarray([r[2] for r in rows], dtype=np.int32),
        last_day=np.asarray([r[3] for r in rows], dtype=np.int32),
        as_of_day=as_of_day,
        first_day_spend=(np.asarray([r[5] for r in rows], dtype=np.int64)
                         if first_day_spend else None),
    )


def read_members(path: Path, columns: list[str] | None = None) -> pd.DataFrame:
    """Members from a Parquet or CSV file (named columns, or all)."""
    return read_table(path, columns).to_pandas()


def clickhouse_members(client: ClickHouse, table: str, columns: list[str]) -> pd.DataFrame:
    """Members from a ClickHouse table: only the named columns are selected."""
    names = [checked_identifier(c, "members column") for c in columns]
    try:
        rows = client.query(f"SELECT {', '.join(names)} FROM {checked_identifier(table, 'table')}")
    except ClickHouseError as exc:
        raise SourceUnavailable(f"ClickHouse table {table}: {exc}") from exc
    return pd.DataFrame.from_records(rows, columns=names)
