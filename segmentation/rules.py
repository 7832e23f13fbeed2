"""The segment rules file an operator writes: where the data is, how to score, which segments.

    name: autumn-win-back
    timezone: Asia/Shanghai          # the merchant's; decides "today" and purchase days
    as_of: 2026-10-31                # optional: the day every time-based condition counts
                                     # from, RFM recency included (default: today, merchant tz;
                                     # ``today:`` is an older name for it)
    stale_after_days: 7              # warn when the newest transaction is older than this
    transactions: {path: transactions.parquet, member_col: member_id, time_col: ts,
                   amount_col: amount_fen, amount_unit: fen,
                   store_col: store_id, category_col: category, sku_col: sku}
                                     # or clickhouse_table: orders, final: true,
                                     # merchant_id: demo (analytics' orders table)
    members: {path: members.csv, columns: {member_id: vip_no, phone: mobile}}  # or clickhouse_table
    rfm: {bins: 5, monetary: total, map: rfm11, eight_class_center: mean}  # map: or a YAML path
    clusters: {k: auto, seed: 42}    # optional; k a number or auto (silhouette)
    segments:
      - name: gold-at-risk
        name_zh: 金卡流失风险
        where: {rfm_segment: [At Risk, Can't Lose Them], tier: [gold, platinum]}

Relative paths are relative to the rules file. Everything is validated on load, before any
data is read; errors name the field (``segments[0].where.tier``).
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, cast
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import yaml

from infra.textfiles import read_text
from segmentation.conditions import Condition, Vocabulary, parse_condition
from segmentation.errors import InvalidInput, InvalidRule
from segmentation.rfm import Monetary
from segmentation.segments import (
    EIGHT_CLASSES,
    VALID_BINS,
    SegmentMap,
    all_codes,
    load_segment_map,
    rfm11_map,
)
from segmentation.sources import TransactionColumns, checked_identifier
from segmentation.windows import parse_date

# The member attributes conditions and snapshots use; ``members.columns`` maps other names.
MEMBER_COLUMNS = (
    "member_id", "name", "phone", "wechat_openid", "wechat_subscribed", "alipay_user_id", "tier",
    "points", "balance_fen", "birthday", "birthday_is_lunar", "home_store_id", "registered_at",
    "consent_sms", "consent_wechat", "consent_alipay",
)
_TOP_KEYS = {"name", "timezone", "today", "as_of", "transactions", "members", "rfm", "clusters",
             "segments", "stale_after_days"}
_TX_KEYS = {"member_col", "time_col", "amount_col", "amount_unit", "store_col", "category_col",
            "sku_col", "final", "merchant_id"}


@dataclass(frozen=True)
class DataLocation:
    """A file or a ClickHouse table; ``renames`` maps our column names to the merchant's."""

    path: Path | None = None
    clickhouse_table: str | None = None
    renames: tuple[tuple[str, str], ...] = ()
    final: bool = False  # ClickHouse: read with FINAL (a ReplacingMergeTree such as orders)
    merchant_id: str | None = None  # ClickHouse: only this merchant's rows (merchant_id column)


@dataclass(frozen=True)
class ClusterSpec:
    """The clusters: section: k (None = by silhouette) and the seed."""

    k: int | None  # None: chosen by silhouette
    seed: int


@dataclass(frozen=True)
class SegmentRule:
    """One named segment of the rules file and its condition tree."""

    name: str
    name_zh: str
    where: Condition


@dataclass(frozen=True)
class RulesFile:
    """A validated rules file."""

    name: str
    timezone: ZoneInfo
    today: dt.date | None
    as_of: dt.date | None
    transactions: DataLocation
    columns: TransactionColumns
    members: DataLocation | None
    bins: int
    monetary: Monetary
    segment_map: SegmentMap
    eight_class_center: Literal["mean", "median"]
    clusters: ClusterSpec | None
    segments: tuple[SegmentRule, ...]
    source_text: str  # the file as read, fingerprinted into snapshots
    stale_after_days: int = 7


def _mapping(data: Any, path: str) -> dict[str, Any]:
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise InvalidRule(path, "must be a mapping")
    return data


def _unknown(data: dict[str, Any], allowed: set[str], path: str) -> None:
    for key in data:
        if key not in allowed:
            raise InvalidRule(f"{path}.{key}" if path else str(key),
                              f"unknown key; expected one of {', '.join(sorted(allowed))}")


def _date(value: Any, path: str) -> dt.date | None:
    return None if value is None else parse_date(value, path)


def _location(data: Any, path: str, base: Path, extra: set[str]) -> DataLocation:
    spec = _mapping(data, path)
    _unknown(spec, {"path", "clickhouse_table", *extra}, path)
    if ("path" in spec) == ("clickhouse_table" in spec):
        raise InvalidRule(path, "give exactly one of path or clickhouse_table")
    if "path" in spec:
        for key in ("final", "merchant_id"):
            if key in spec:
                raise InvalidRule(f"{path}.{key}", "applies to clickhouse_table only")
        file = Path(str(spec["path"]))
        return DataLocation(path=file if file.is_absolute() else base / file)
    try:
        table = checked_identifier(str(spec["clickhouse_table"]), f"{path}.clickhouse_table")
    except InvalidInput as exc:
        raise InvalidRule(exc.field, exc.problem) from None
    final = spec.get("final", False)
    if not isinstance(final, bool):
        raise InvalidRule(f"{path}.final", f"must be true or false, got {final!r}")
    merchant = spec.get("merchant_id")
    if merchant is not None and not re.fullmatch(r"[A-Za-z0-9_-]{1,32}", str(merchant)):
        raise InvalidRule(f"{path}.merchant_id", "expected 1-32 letters, digits, '_' or '-'")
    return DataLocation(clickhouse_table=table, final=final,
                        merchant_id=None if merchant is None else str(merchant))


def _members(data: Any, base: Path) -> DataLocation:
    location = _location(data, "members", base, {"columns"})
    renames = _mapping(data.get("columns"), "members.columns")
    pairs = []
    for ours, theirs in renames.items():
        if ours not in MEMBER_COLUMNS:
            raise InvalidRule(f"members.columns.{ours}", "unknown member attribute; expected "
                              f"one of {', '.join(MEMBER_COLUMNS)}")
        try:
            checked_identifier(str(theirs), f"members.columns.{ours}")
        except InvalidInput as exc:
            raise InvalidRule(exc.field, exc.problem) from None
        pairs.append((str(ours), str(theirs)))
    return DataLocation(location.path, location.clickhouse_table, tuple(pairs))


def _columns(spec: dict[str, Any]) -> TransactionColumns:
    try:
        return TransactionColumns(
            member=str(spec.get("member_col", "member_id")),
            time=str(spec.get("time_col", "ts")),
            amount=str(spec.get("amount_col", "amount_fen")),
            amount_unit=spec.get("amount_unit", "fen"),
            store=checked_identifier(str(spec.get("store_col", "store_id")),
                                     "transactions.store_col"),
            category=checked_identifier(str(spec.get("category_col", "category")),
                                        "transactions.category_col"),
            sku=checked_identifier(str(spec.get("sku_col", "sku")), "transactions.sku_col"),
        )
    except InvalidInput as exc:
        field = exc.field if exc.field.startswith("transactions.") else f"transactions.{exc.field}"
        raise InvalidRule(field, exc.problem) from None


def _rfm(data: Any, base: Path) -> tuple[int, Monetary, SegmentMap, Literal["mean", "median"]]:
    spec = _mapping(data, "rfm")
    _unknown(spec, {"bins", "monetary", "map", "eight_class_center"}, "rfm")
    bins = spec.get("bins", 5)
    if bins not in VALID_BINS:
        raise InvalidRule("rfm.bins", f"must be 3, 4 or 5, got {bins!r}")
    monetary = spec.get("monetary", "total")
    if monetary not in ("total", "avg"):
        raise InvalidRule("rfm.monetary", f"must be total or avg, got {monetary!r}")
    center = spec.get("eight_class_center", "mean")
    if center not in ("mean", "median"):
        raise InvalidRule("rfm.eight_class_center", f"must be mean or median, got {center!r}")
    chosen = str(spec.get("map", "rfm11"))
    if chosen == "rfm11":
        segment_map = rfm11_map(bins)
    else:
        map_path = Path(chosen) if Path(chosen).is_absolute() else base / chosen
        segment_map = load_segment_map(map_path)
        if segment_map.bins != bins:
            raise InvalidRule(
                "rfm.map", f"{chosen} is for {segment_map.bins} bins, rfm.bins is {bins}"
            )
    return bins, cast(Monetary, monetary), segment_map, center


def _clusters(data: Any) -> ClusterSpec | None:
    if data is None:
        return None
    spec = _mapping(data, "clusters")
    _unknown(spec, {"k", "seed"}, "clusters")
    k = spec.get("k", "auto")
    if k != "auto" and (isinstance(k, bool) or not isinstance(k, int) or not 2 <= k <= 20):
        raise InvalidRule("clusters.k", f"must be auto or a number 2-20, got {k!r}")
    seed = spec.get("seed", 42)
    if isinstance(seed, bool) or not isinstance(seed, int):
        raise InvalidRule("clusters.seed", f"must be a whole number, got {seed!r}")
    return ClusterSpec(None if k == "auto" else int(k), seed)


def vocabulary(segment_map: SegmentMap, *, bins: int, clusters: bool) -> Vocabulary:
    """The names conditions may use with this segment map, bin count and clustering."""
    return Vocabulary(
        rfm_segments=frozenset(segment_map.names) | frozenset(segment_map.names_zh),
        eight_classes=frozenset(n for pair in EIGHT_CLASSES.values() for n in pair),
        rfm_codes=frozenset(all_codes(bins)),
        bins=bins,
        clusters=clusters,
    )


def parse_rules(data: Any, *, base: Path, source_text: str = "") -> RulesFile:
    """Validate a parsed rules file; relative paths resolve against ``base``."""
    top = _mapping(data, "rules file")
    _unknown(top, _TOP_KEYS, "")
    try:
        timezone = ZoneInfo(str(top.get("timezone", "Asia/Shanghai")))
    except (ZoneInfoNotFoundError, ValueError):
        raise InvalidRule("timezone", f"{top.get('timezone')!r} is not a timezone") from None
    if "transactions" not in top:
        raise InvalidRule("transactions", "is required (path: FILE or clickhouse_table: NAME)")
    tx_spec = _mapping(top["transactions"], "transactions")
    transactions = _location(tx_spec, "transactions", base, _TX_KEYS)
    members = (_members(top["members"], base) if top.get("members") is not None else None)
    bins, monetary, segment_map, center = _rfm(top.get("rfm"), base)
    clusters = _clusters(top.get("clusters"))
    vocab = vocabulary(segment_map, bins=bins, clusters=clusters is not None)
    raw_segments = top.get("segments")
    if not isinstance(raw_segments, list) or not raw_segments:
        raise InvalidRule("segments", "must be a non-empty list of {name, where}")
    segments: list[SegmentRule] = []
    for i, item in enumerate(raw_segments):
        where = f"segments[{i}]"
        spec = _mapping(item, where)
        _unknown(spec, {"name", "name_zh", "where"}, where)
        name = spec.get("name")
        if not isinstance(name, str) or not name.strip():
            raise InvalidRule(f"{where}.name", "is required")
        if any(s.name == name for s in segments):
            raise InvalidRule(f"{where}.name", f"{name!r} is used twice")
        if "where" not in spec:
            raise InvalidRule(f"{where}.where", "is required (the conditions)")
        condition = parse_condition(spec["where"], f"{where}.where", vocab)
        segments.append(SegmentRule(name, str(spec.get("name_zh", name)), condition))
    return RulesFile(
        name=str(top.get("name", "segments")),
        timezone=timezone,
        today=_date(top.get("today"), "today"),
        as_of=_date(top.get("as_of"), "as_of"),
        transactions=transactions,
        columns=_columns(tx_spec),
        members=members,
        bins=bins,
        monetary=monetary,
        segment_map=segment_map,
        eight_class_center=center,
        clusters=clusters,
        segments=tuple(segments),
        source_text=source_text,
        stale_after_days=_stale(top.get("stale_after_days", 7)),
    )


def _stale(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= 3650:
        raise InvalidRule("stale_after_days", f"must be a number of days 0-3650, got {value!r}")
    return value


def load_rules(path: Path) -> RulesFile:
    """Read and validate a rules file."""
    try:
        text = read_text(path)  # UTF-8, UTF-8 with a BOM or GBK/GB18030
        data = yaml.safe_load(text)
    except OSError as exc:
        raise InvalidRule(str(path), f"cannot read: {exc.strerror or exc}") from None
    except yaml.YAMLError as exc:
        raise InvalidRule(str(path), f"is not valid YAML: {exc}".replace("\n", " ")) from None
    return parse_rules(data, base=path.parent, source_text=text)
