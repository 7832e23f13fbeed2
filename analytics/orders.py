"""Generated transactions (Parquet or CSV from ``quanpai data generate``) into ``orders``.

Loaded in chunks of ``chunk`` rows; each chunk's rows carry ``source`` =
``file:<fingerprint>:<chunk number>``, and a chunk already present is skipped, so loading the
same file again (or after a crash part-way) adds nothing twice.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from analytics.errors import QueryError
from analytics.loader import ORDER_COLUMNS
from analytics.schema import ORDERS_TABLE, ensure_schema
from infra.clickhouse import ClickHouse

REQUIRED = ("order_id", "member_id", "store_id", "ts", "amount_fen")
OPTIONAL = ("paid_channel", "category", "sku")


def fingerprint(path: Path) -> str:
    stat = path.stat()
    return hashlib.sha256(f"{path.resolve()}|{stat.st_size}|{stat.st_mtime_ns}".encode()
                          ).hexdigest()[:16]


def _read(path: Path) -> Any:
    import pyarrow.csv as pacsv
    import pyarrow.parquet as pq

    if path.suffix == ".parquet":
        return pq.read_table(path)
    return pacsv.read_csv(path)


def _at(values: list[str] | None, i: int) -> str:
    return values[i] if values is not None else ""


def load_orders(
    ch: ClickHouse, path: Path, *, merchant_id: str, chunk: int = 200_000,
    progress: Callable[[int, int], None] | None = None,
) -> int:
    """Load the transactions file at ``path`` as orders of ``merchant_id``; returns rows added."""
    import numpy as np
    import pyarrow as pa

    table = _read(path)
    missing = [c for c in REQUIRED if c not in table.column_names]
    if missing:
        raise QueryError(f"{path.name}: column {missing[0]} is missing (needs "
                         f"{', '.join(REQUIRED)})")
    ensure_schema(ch)
    fp = fingerprint(path)
    present = {str(r[0]) for r in ch.query(
        f"SELECT DISTINCT source FROM {ORDERS_TABLE} WHERE source LIKE 'file:{fp}:%'")}
    ts = table.column("ts")
    if pa.types.is_timestamp(ts.type):
        seconds = ts.cast(pa.timestamp("s", tz="UTC")).cast(pa.int64()).to_numpy()
    else:
        seconds = np.array([int(datetime.fromisoformat(str(v)).astimezone(UTC).timestamp())
                            for v in ts.to_pylist()], dtype=np.int64)
    columns = {c: [str(v) for v in table.column(c).to_pylist()]
               for c in ("order_id", "member_id", "store_id")}
    extra = {c: ([str(v or "") for v in table.column(c).to_pylist()]
                 if c in table.column_names else None) for c in OPTIONAL}
    amounts = table.column("amount_fen").to_numpy()
    added = 0
    for number, first in enumerate(range(0, table.num_rows, chunk)):
        source = f"file:{fp}:{number}"
        last = min(first + chunk, table.num_rows)
        if source not in present:
            rows = [(merchant_id, columns["member_id"][i], columns["store_id"][i],
                     columns["order_id"][i], datetime.fromtimestamp(int(seconds[i]), UTC),
                     int(amounts[i]),
                     *(_at(extra[c], i) for c in OPTIONAL), source)
                    for i in range(first, last)]
            ch.insert(ORDERS_TABLE, ORDER_COLUMNS, rows)
            added += len(rows)
        if progress is not None:
            progress(last, table.num_rows)
    return added
