"""From a segment snapshot to batches: holdout split, channel routing, one message per batch.

The holdout split is a keyed hash of (campaign, member), so a member's group never changes
when the plan is made again. A member is routed to the first channel of the campaign's order
that reaches them (followed and consenting on WeChat, a phone with SMS consent, an Alipay user
with consent); members no channel reaches still get their coupon in the wallet.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import pandas as pd

from dispatcher.campaigns import Campaign

# What a batch carries per member: the fields the channels need, nothing more.
Row = tuple[str, str, str, str]  # member_id, channel ('' = none), address, name


@dataclass(frozen=True)
class Plan:
    batches: list[list[Row]]
    held_out: list[str]
    routed: dict[str, int]

    @property
    def treated(self) -> int:
        return sum(len(b) for b in self.batches)


def _reachable(snapshot: pd.DataFrame, channel: str) -> tuple[np.ndarray, pd.Series]:
    def col(name: str, default: object) -> pd.Series:
        return snapshot[name] if name in snapshot else pd.Series(default, index=snapshot.index)

    if channel in ("wechat", "wechat_mass"):
        openid = col("wechat_openid", None)
        ok = openid.notna() & col("wechat_subscribed", False).astype(bool)
        ok &= col("consent_wechat", True).astype(bool)
        return ok.to_numpy(), openid
    if channel == "sms":
        phone = col("phone", None)
        return (phone.notna() & col("consent_sms", False).astype(bool)).to_numpy(), phone
    alipay = col("alipay_user_id", None)
    return (alipay.notna() & col("consent_alipay", False).astype(bool)).to_numpy(), alipay


def holdout_mask(member_ids: pd.Series, *, campaign_id: str, permille: int) -> np.ndarray:
    """True for members held out of ``campaign_id`` (about ``permille``/1000 of them)."""
    if permille <= 0:
        return np.zeros(len(member_ids), dtype=bool)
    key = hashlib.blake2b(campaign_id.encode(), digest_size=8).hexdigest()
    hashes = pd.util.hash_array(member_ids.astype(str).to_numpy(), hash_key=key)
    return np.asarray(hashes % 1000 < permille)


def plan(snapshot: pd.DataFrame, *, campaign: Campaign, batch_size: int) -> Plan:
    """Split ``snapshot`` (one row per member, column ``member_id``) into batches."""
    members = snapshot.drop_duplicates("member_id").reset_index(drop=True)
    ids = members["member_id"].astype(str)
    held = holdout_mask(ids, campaign_id=campaign.campaign_id, permille=campaign.holdout_permille)
    channel = np.full(len(members), "", dtype=object)
    address = np.full(len(members), "", dtype=object)
    for name in campaign.channels:
        ok, addr = _reachable(members, name)
        take = ok & (channel == "")
        channel[take] = name
        address[take] = addr.to_numpy()[take]
    names = members["name"].fillna("").astype(str) if "name" in members else ids.map(lambda _: "")
    treated = ~held
    rows: list[Row] = list(
        zip(
            ids[treated].tolist(),
            channel[treated].tolist(),
            [str(a) for a in address[treated]],
            names[treated].tolist(),
            strict=True,
        )
    )
    batches = [rows[i : i + batch_size] for i in range(0, len(rows), batch_size)]
    routed = pd.Series(channel[treated]).replace("", "none").value_counts().to_dict()
    return Plan(batches, ids[held].tolist(), {str(k): int(v) for k, v in routed.items()})


def chunks(items: list[Row], size: int) -> Iterator[list[Row]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]
