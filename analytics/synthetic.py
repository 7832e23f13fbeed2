"""A generated campaign with a planted effect: its events and its members' orders.

Members spend at their own rate (log-normal), so spend before the campaign predicts spend after
it (what CUPED uses). Treated members are given, with probability ½, one extra order worth
``2 × effect_fen``: the true uplift per member is ``effect_fen`` in expectation. Used by the
tests (recovery and coverage of the interval) and the bench (ROI over millions of events).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np

from analytics.events import Event

CHANNELS = ("sms", "wechat", "alipay")


@dataclass(frozen=True)
class PlantedCampaign:
    campaign_id: str
    merchant_id: str
    start: datetime
    member_ids: np.ndarray  # str
    held: np.ndarray  # bool
    redeemed: np.ndarray  # bool
    refunded: np.ndarray  # bool (of the redeemed)
    discount_fen: int
    order_member: np.ndarray  # index into member_ids
    order_ts: np.ndarray  # epoch seconds
    order_amount: np.ndarray  # fen
    order_store: np.ndarray  # int

    def member_spend(self, first: datetime, last: datetime) -> np.ndarray:
        """Each member's orders in [first, last), fen."""
        inside = (self.order_ts >= first.timestamp()) & (self.order_ts < last.timestamp())
        return np.bincount(self.order_member[inside], weights=self.order_amount[inside],
                           minlength=len(self.member_ids))

    def events(self) -> list[Event]:
        out = []
        ts = self.start
        cid, mid = self.campaign_id, self.merchant_id
        for i, member in enumerate(self.member_ids.tolist()):
            if self.held[i]:
                out.append(Event(f"held_out:{cid}:{member}", "held_out", mid, cid, member, ts=ts))
                continue
            channel = CHANNELS[i % len(CHANNELS)]
            out.append(Event(f"issued:{cid}:{member}", "issued", mid, cid, member, ts=ts,
                             coupon_code=f"C{i}"))
            out.append(Event(f"sent:{cid}:{member}", "sent", mid, cid, member, ts=ts,
                             channel=channel))
            out.append(Event(f"delivered:{cid}:{member}:{channel}", "delivered", mid, cid,
                             member, ts=ts + timedelta(seconds=5), channel=channel))
            if self.redeemed[i]:
                when = ts + timedelta(days=1 + i % 5)
                out.append(Event(f"redeemed:{mid}:{cid}:{i}", "redeemed", mid, cid, member,
                                 ts=when, store_id=f"S{i % 7}", order_id=f"R{i}",
                                 amount_fen=10_000, discount_fen=self.discount_fen,
                                 cost_fen=self.discount_fen))
                if self.refunded[i]:
                    out.append(Event(f"refunded:{mid}:{cid}:{i}", "refunded", mid, cid, member,
                                     ts=when + timedelta(hours=2), store_id=f"S{i % 7}",
                                     amount_fen=10_000, discount_fen=self.discount_fen,
                                     cost_fen=self.discount_fen))
        return out

    def order_rows(self) -> list[tuple[Any, ...]]:
        """``orders`` rows (``analytics.loader.ORDER_COLUMNS`` order)."""
        ids = self.member_ids
        return [(self.merchant_id, str(ids[m]), f"S{s}", f"O{self.campaign_id}-{n}",
                 datetime.fromtimestamp(int(t), UTC), int(a), "wechat_pay", "", "", "synthetic")
                for n, (m, t, a, s) in enumerate(zip(
                    self.order_member.tolist(), self.order_ts.tolist(),
                    self.order_amount.tolist(), self.order_store.tolist(), strict=True))]


def planted_campaign(
    *, members: int, effect_fen: int, seed: int, holdout_share: float = 0.5,
    campaign_id: str = "c1", merchant_id: str = "m1", pre_days: int = 28,
    window_days: int = 14, start: datetime | None = None, discount_fen: int = 1500,
) -> PlantedCampaign:
    """A campaign of ``members`` members whose treated members spend ``effect_fen`` more."""
    rng = np.random.default_rng(seed)
    start = start or datetime(2026, 11, 1, 2, 0, tzinfo=UTC)
    held = rng.random(members) < holdout_share
    rate = rng.lognormal(-1.0, 0.8, members)  # orders per week
    basket = rng.lognormal(np.log(6000), 0.5, members)  # fen
    member_idx, stamps, amounts = [], [], []
    for first, days in ((start - timedelta(days=pre_days), pre_days), (start, window_days)):
        counts = rng.poisson(rate * days / 7)
        idx = np.repeat(np.arange(members), counts)
        member_idx.append(idx)
        stamps.append(first.timestamp() + rng.random(len(idx)) * days * 86400)
        amounts.append(np.maximum(np.round(basket[idx] * rng.lognormal(0, 0.3, len(idx))), 100))
    extra = np.flatnonzero(~held & (rng.random(members) < 0.5))
    member_idx.append(extra)
    stamps.append(start.timestamp() + rng.random(len(extra)) * window_days * 86400)
    amounts.append(np.full(len(extra), 2 * effect_fen, dtype=float))
    redeemed = ~held & (rng.random(members) < 0.2)
    return PlantedCampaign(
        campaign_id=campaign_id, merchant_id=merchant_id, start=start,
        member_ids=np.array([f"{10_000_001 + i}" for i in range(members)]), held=held,
        redeemed=redeemed, refunded=redeemed & (rng.random(members) < 0.25),
        discount_fen=discount_fen,
        order_member=np.concatenate(member_idx), order_ts=np.concatenate(stamps).astype(np.int64),
        order_amount=np.concatenate(amounts).astype(np.int64),
        order_store=rng.integers(1, 8, size=sum(len(i) for i in member_idx)),
    )
