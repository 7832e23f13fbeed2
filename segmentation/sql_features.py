"""Rule features as one ClickHouse query: GROUP BY member, one sumIf/countIf pair per filter.

    SELECT member, uniqExact(day), min(day), max(day), sum(fen),
           sumIf(fen, day >= 20000 AND day <= 20089), countIf(day >= 20000 AND day <= 20089), ...
    FROM (SELECT <member> AS member, toUInt32(toDate(<ts>, '<tz>')) AS day, <fen> AS fen,
                 toString(<store>) AS t_store ... FROM <table> [FINAL] WHERE <merchant filter>)
    WHERE day <= <as_of> GROUP BY member ORDER BY member

It keeps to functions ClickHouse 18.16 already had (``uniqExact``, ``sumIf``, ``countIf``,
``IN`` over string tuples), so chDB and an old server run the same text, and it computes exactly
what ``segmentation.aggregates`` computes in numpy: frequency is distinct local purchase days,
spend sums fen, orders counts rows, stores/categories/SKUs compare as text. Names are checked
identifiers; values are quoted literals (backslash and quote escaped).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd

from segmentation.aggregates import RuleFeatures
from segmentation.behaviour import orders_column, spend_column
from segmentation.features import MemberFeatures
from segmentation.windows import TxFilter


def quote(value: str) -> str:
    """A ClickHouse string literal."""
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


def _condition(f: TxFilter, as_of_day: int) -> str:
    first, last = f.window.day_range(as_of_day)
    parts = [f"day >= {max(first, 0)}", f"day <= {last}"]
    for name, values in (("store", f.stores), ("category", f.categories), ("sku", f.skus)):
        if values:
            parts.append(f"t_{name} IN ({', '.join(quote(v) for v in sorted(values))})")
    return " AND ".join(parts)


def rule_features_sql(*, table: str, rows: str, member: str, day: str, fen: str,
                      text: Mapping[str, str], filters: Sequence[TxFilter], as_of_day: int) -> str:
    """The query; ``table`` is the FROM clause, ``rows`` the row filter (merchant), ``text``
    maps store/category/sku to checked column names."""
    inner = [f"{member} AS member", f"{day} AS day", f"{fen} AS fen",
             *(f"toString({column}) AS t_{name}" for name, column in sorted(text.items()))]
    outer = ["member", "uniqExact(day)", "min(day)", "max(day)", "sum(fen)"]
    for f in filters:
        condition = _condition(f, as_of_day)
        outer += [f"sumIf(fen, {condition})", f"countIf({condition})"]
    return (f"SELECT {', '.join(outer)} FROM (SELECT {', '.join(inner)} FROM {table} "
            f"WHERE {rows}) "
            f"WHERE day <= {as_of_day} GROUP BY member ORDER BY member")


def member_array(rows: list[tuple[Any, ...]]) -> npt.NDArray[np.generic]:
    """The member ids of result rows (first column); text ids as objects, like pandas'."""
    if not rows:
        return np.zeros(0, np.int64)
    member_ids = np.asarray([r[0] for r in rows])
    return member_ids.astype(object) if member_ids.dtype.kind == "U" else member_ids


def rule_features_from_rows(rows: list[tuple[Any, ...]], filters: Sequence[TxFilter], *,
                            as_of_day: int, newest_day: int | None) -> RuleFeatures:
    """``RuleFeatures`` from the query's rows."""
    member_ids = member_array(rows)
    width = 5 + 2 * len(filters)
    table = (np.asarray([r[1:width] for r in rows], dtype=np.int64) if rows
             else np.zeros((0, width - 1), np.int64))
    features = MemberFeatures(
        member_id=member_ids,
        frequency=table[:, 0].copy(),
        monetary_total=table[:, 3].copy(),
        first_day=table[:, 1].astype(np.int32),
        last_day=table[:, 2].astype(np.int32),
        as_of_day=as_of_day,
    )
    columns: dict[str, Any] = {}
    for i, f in enumerate(filters):
        columns[spend_column(f)] = table[:, 4 + 2 * i].copy()
        columns[orders_column(f)] = table[:, 5 + 2 * i].copy()
    aggregates = pd.DataFrame(columns, index=pd.Index(member_ids, name="member_id"))
    return RuleFeatures(features, aggregates, newest_day)
