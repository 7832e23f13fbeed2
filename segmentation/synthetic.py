"""Synthetic members, stores and transactions with the skew real member bases have.

Few heavy spenders and many light ones (log-normal purchase rates and basket sizes), many dormant
members (each member's activity ends after an exponential lifetime), members who registered and
never bought, and seasonality (weekends, the Spring Festival run-up and holiday lull, 618 and
Double 11, summer). Everything is vectorised numpy, so a million members and ten million
transactions take seconds; the same seed gives the same files.

``birthday`` is the solar date of birth; ``birthday_is_lunar`` means the member celebrates the
lunar anniversary of that date (农历生日), which segmentation converts per year.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

TIERS = np.array(["normal", "silver", "gold", "platinum"])
# Points per yuan by tier (platinum 1 per 10 yuan, gold 1 per 18, ...).
_POINTS_PER_YUAN = np.array([1 / 30, 1 / 24, 1 / 18, 1 / 10])
_SURNAMES = list(
    "王李张刘陈杨黄赵吴周徐孙马朱胡郭何林罗高郑"
    "梁谢宋唐许韩冯邓曹彭曾肖田董潘袁蔡蒋余于杜叶程魏苏吕丁任沈姚卢"
)
_GIVEN = list(
    "伟芳娜秀英敏静丽强磊军洋勇艳杰娟涛明超"
    "秀霞平刚桂英华玉萍红娥玲芬燕彬浩宇轩子涵欣怡梓晨佳琪一诺"
)
_CITIES = ["上海", "北京", "广州", "深圳", "杭州", "成都", "南京", "武汉", "苏州", "西安"]
_PHONE_PREFIXES = np.array(["138", "139", "135", "150", "151", "158", "186", "187", "177", "199"])
_OPENID_ALPHABET = np.frombuffer(
    b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_", dtype=np.uint8
)
# Lunch and dinner peaks.
_HOUR_WEIGHTS = np.array(
    [0, 0, 0, 0, 0, 0, 0, 2, 4, 4, 5, 8, 12, 9, 5, 4, 5, 8, 12, 10, 6, 3, 1, 0.0]
)
# Festival dates the seasonality follows (Spring Festival moves with the lunar calendar).
_SPRING_FESTIVALS = [date(2024, 2, 10), date(2025, 1, 29), date(2026, 2, 17), date(2027, 2, 6)]


@dataclass(frozen=True)
class GeneratedData:
    members: Path
    stores: Path
    transactions: Path
    member_count: int
    transaction_count: int


def _day_weights(start: date, days: int) -> np.ndarray:
    """Relative sales per day: weekly rhythm plus festival peaks and lulls."""
    weights = np.ones(days)
    weekday = (np.arange(days) + start.weekday()) % 7
    weights[weekday >= 5] *= 1.35
    for offset in range(days):
        day = start + timedelta(days=offset)
        for festival in _SPRING_FESTIVALS:
            delta = (day - festival).days
            if -14 <= delta < 0:
                weights[offset] *= 1.8  # new-year shopping
            elif 0 <= delta < 7:
                weights[offset] *= 0.55  # shops close, people travel home
        if (day.month, day.day) in {(6, 18), (11, 11), (12, 12)}:
            weights[offset] *= 2.0
        if day.month in (7, 8):
            weights[offset] *= 1.1
    return weights


def _openids(rng: np.random.Generator, n: int) -> np.ndarray:
    idx = rng.integers(0, len(_OPENID_ALPHABET), size=(n, 27), dtype=np.uint8)
    raw = _OPENID_ALPHABET[idx].view("S27").ravel()
    return np.char.add(b"o", raw).astype("U28")


def _digits(rng: np.random.Generator, n: int, width: int) -> np.ndarray:
    return np.char.zfill(rng.integers(0, 10**width, size=n).astype("U"), width)


def _nullable(values: np.ndarray, present: np.ndarray) -> pa.Array:
    return pa.array(values, type=pa.string(), mask=~present)


def generate(
    *,
    members: int,
    out_dir: Path,
    seed: int = 42,
    end: date = date(2026, 10, 31),
    days: int = 730,
    purchases_per_member: float = 11.0,
    timezone: str = "Asia/Shanghai",
) -> GeneratedData:
    """Write members.parquet, stores.parquet and transactions.parquet into ``out_dir``."""
    if members <= 0:
        raise ValueError("members must be positive")
    rng = np.random.default_rng(seed)
    tz = ZoneInfo(timezone)
    start = end - timedelta(days=days - 1)
    start_epoch = int(datetime(start.year, start.month, start.day, tzinfo=tz).timestamp())
    n = members
    n_stores = int(min(500, max(5, n // 5000)))

    # Members: registration, lifetime (dormancy), purchase rate and basket size.
    reg_day = rng.integers(-365, days - 14, size=n)
    lifetime = rng.exponential(420.0, size=n)
    first_day = np.clip(reg_day, 0, days - 1)
    last_day = np.clip(reg_day + lifetime, 0, days - 1).astype(np.int64)
    active_days = np.maximum(last_day - first_day + 1, 0)
    active_days[reg_day + lifetime < 0] = 0  # churned before the window
    appetite = rng.lognormal(0.0, 1.1, size=n)
    appetite /= appetite.mean()
    mean_active = max(float(active_days.mean()), 1.0)
    counts = rng.poisson(purchases_per_member * appetite * active_days / mean_active)
    counts[rng.random(n) < 0.08] = 0  # registered, never bought
    basket = rng.lognormal(np.log(4200.0), 0.55, size=n) * (1 + 0.25 * np.log1p(appetite))

    # Transactions: days by inverse CDF of the seasonal weights within each member's active span.
    cdf = np.concatenate([[0.0], np.cumsum(_day_weights(start, days))])
    cdf /= cdf[-1]
    member_idx = np.repeat(np.arange(n, dtype=np.int64), counts)
    t = len(member_idx)
    lo = cdf[first_day[member_idx]]
    hi = cdf[last_day[member_idx] + 1]
    day = np.searchsorted(cdf, lo + rng.random(t) * (hi - lo), side="right") - 1
    day = np.clip(day, first_day[member_idx], last_day[member_idx])
    hour = rng.choice(np.arange(24), size=t, p=_HOUR_WEIGHTS / _HOUR_WEIGHTS.sum())
    seconds = hour * 3600 + rng.integers(0, 3600, size=t)
    ts_us = (start_epoch + day * 86400 + seconds) * 1_000_000
    amount = np.maximum(
        np.round(basket[member_idx] * rng.lognormal(0.0, 0.35, size=t) / 10) * 10, 100
    ).astype(np.int64)
    home_store = rng.integers(1, n_stores + 1, size=n, dtype=np.int32)
    store = np.where(
        rng.random(t) < 0.8,
        home_store[member_idx],
        rng.integers(1, n_stores + 1, size=t, dtype=np.int32),
    ).astype(np.int32)

    member_ids = np.arange(10_000_001, 10_000_001 + n, dtype=np.int64)
    out_dir.mkdir(parents=True, exist_ok=True)
    ts_type = pa.timestamp("us", tz=timezone)
    transactions = pa.table(
        {
            "order_id": pa.array(np.arange(1, t + 1, dtype=np.int64) + 900_000_000),
            "member_id": pa.array(member_ids[member_idx]),
            "store_id": pa.array(store),
            "ts": pa.array(ts_us, type=pa.int64()).cast(ts_type),
            "amount_fen": pa.array(amount),
        }
    )
    tx_path = out_dir / "transactions.parquet"
    pq.write_table(transactions, tx_path, compression="snappy")

    # Member attributes that depend on behaviour: tier by total spend, points, last purchase.
    spend = np.bincount(member_idx, weights=amount, minlength=n)
    rank = spend.argsort().argsort() / max(n - 1, 1)
    tier_idx = np.select([rank >= 0.97, rank >= 0.87, rank >= 0.62], [3, 2, 1], 0)
    tier_idx[spend == 0] = 0
    points = (spend / 100 * _POINTS_PER_YUAN[tier_idx] * rng.uniform(0.2, 1.0, n)).astype(np.int64)
    last_ts = np.full(n, -1, dtype=np.int64)
    np.maximum.at(last_ts, member_idx, ts_us)
    has_balance = rng.random(n) < 0.2
    balance = np.where(has_balance, np.round(rng.lognormal(np.log(30000), 0.8, n), -2), 0)

    has_phone = rng.random(n) < 0.88
    has_openid = rng.random(n) < 0.72
    subscribed = has_openid & (rng.random(n) < 0.8)
    has_alipay = rng.random(n) < 0.4
    birth = (
        np.datetime64("1960-01-01")
        + rng.integers(0, (date(2006, 12, 31) - date(1960, 1, 1)).days, n).astype("timedelta64[D]")
    )
    names = np.char.add(
        np.array(_SURNAMES)[rng.integers(0, len(_SURNAMES), n)],
        np.where(
            rng.random(n) < 0.7,
            np.char.add(
                np.array(_GIVEN)[rng.integers(0, len(_GIVEN), n)],
                np.array(_GIVEN)[rng.integers(0, len(_GIVEN), n)],
            ),
            np.array(_GIVEN)[rng.integers(0, len(_GIVEN), n)],
        ),
    )
    prefixes = _PHONE_PREFIXES[rng.integers(0, len(_PHONE_PREFIXES), n)]
    phones = np.char.add(prefixes, _digits(rng, n, 8))
    alipay_ids = np.char.add("2088", _digits(rng, n, 12))
    reg_us = (start_epoch + reg_day * 86400 + rng.integers(8 * 3600, 22 * 3600, n)) * 1_000_000
    members_table = pa.table(
        {
            "member_id": pa.array(member_ids),
            "name": pa.array(names, type=pa.string()),
            "phone": _nullable(phones, has_phone),
            "wechat_openid": _nullable(_openids(rng, n), has_openid),
            "wechat_subscribed": pa.array(subscribed),
            "alipay_user_id": _nullable(alipay_ids, has_alipay),
            "tier": pa.array(TIERS[tier_idx], type=pa.string()),
            "points": pa.array(points),
            "balance_fen": pa.array(balance.astype(np.int64)),
            "birthday": pa.array(birth.astype("datetime64[D]"), type=pa.date32()),
            "birthday_is_lunar": pa.array(rng.random(n) < 0.15),
            "home_store_id": pa.array(home_store),
            "registered_at": pa.array(reg_us, type=pa.int64()).cast(ts_type),
            "consent_sms": pa.array(has_phone & (rng.random(n) < 0.78)),
            "consent_wechat": pa.array(subscribed),
            "consent_alipay": pa.array(has_alipay & (rng.random(n) < 0.65)),
            "last_purchase_at": pa.array(last_ts, type=pa.int64(), mask=last_ts < 0).cast(ts_type),
        }
    )
    members_path = out_dir / "members.parquet"
    pq.write_table(members_table, members_path, compression="snappy")

    store_ids = np.arange(1, n_stores + 1, dtype=np.int32)
    stores = pa.table(
        {
            "store_id": pa.array(store_ids),
            "name": pa.array([f"{_CITIES[i % len(_CITIES)]}{i:03d}号店" for i in store_ids]),
            "city": pa.array([_CITIES[i % len(_CITIES)] for i in store_ids]),
        }
    )
    stores_path = out_dir / "stores.parquet"
    pq.write_table(stores, stores_path)
    return GeneratedData(members_path, stores_path, tx_path, n, t)
