"""From a segment snapshot to batches: holdout split, reachability, one message per batch.

The holdout split is a keyed hash of (campaign, member), so a member's group never changes
when the plan is made again. Each member's row carries every address a channel of the campaign
may use (only where the member can be reached there: followed and consenting on WeChat, an Alipay
user with consent, a phone with SMS consent), so the worker's router can fall back from one
channel to the next. Members are grouped by their first reachable channel; mass-send channels get
bigger batches because their provider counts requests, not recipients (WeChat: 100 mass sends a
day, up to 10,000 openids each). The channels' batches are interleaved (``interleave``).
Members no channel reaches still get their coupon in the wallet.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import numpy as np
import pandas as pd

from dispatcher.campaigns import Campaign

# member_id, name, openid, alipay user id, phone, first reachable channel ('' = none)
Row = tuple[str, str, str, str, str, str]
MASS_BATCH = {"wechat_mass": 10_000}


@dataclass(frozen=True)
class Plan:
    batches: list[list[Row]]
    held_out: list[str]
    routed: dict[str, int]

    @property
    def treated(self) -> int:
        return sum(len(b) for b in self.batches)


def _column(frame: pd.DataFrame, name: str, default: object) -> pd.Series:
    return frame[name] if name in frame else pd.Series(default, index=frame.index)


def reachable_addresses(frame: pd.DataFrame) -> dict[str, pd.Series]:
    """Per channel kind, the address where the member can be reached there, else ''."""
    openid = _column(frame, "wechat_openid", None)
    wechat_ok = openid.notna() & _column(frame, "wechat_subscribed", False).astype(bool)
    wechat_ok &= _column(frame, "consent_wechat", True).astype(bool)
    alipay = _column(frame, "alipay_user_id", None)
    alipay_ok = alipay.notna() & _column(frame, "consent_alipay", False).astype(bool)
    phone = _column(frame, "phone", None)
    sms_ok = phone.notna() & _column(frame, "consent_sms", False).astype(bool)
    return {
        "wechat": openid.where(wechat_ok, "").astype(str),
        "alipay": alipay.where(alipay_ok, "").astype(str),
        "sms": phone.where(sms_ok, "").astype(str),
    }


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
    addresses = reachable_addresses(members)
    primary = pd.Series("", index=members.index, dtype=object)
    for channel in campaign.channels:
        kind = channel.split("_", 1)[0]
        primary = primary.where((primary != "") | (addresses[kind] == ""), channel)
    names = _column(members, "name", "").fillna("").astype(str)
    treated = ~held
    frame = pd.DataFrame({
        "member_id": ids, "name": names, "wechat": addresses["wechat"],
        "alipay": addresses["alipay"], "sms": addresses["sms"], "primary": primary,
    })[treated]
    frame = frame.sort_values("primary", kind="stable")
    # Column lists, then zip: iterating rows of Arrow-backed strings is ten times slower.
    rows: list[Row] = list(zip(*(frame[c].tolist() for c in frame.columns), strict=True))
    by_channel: list[list[list[Row]]] = []
    start = 0
    for channel, count in frame["primary"].value_counts(sort=False).sort_index().items():
        size = MASS_BATCH.get(str(channel), batch_size)
        group = rows[start : start + int(count)]
        by_channel.append([group[i : i + size] for i in range(0, len(group), size)])
        start += int(count)
    routed = frame["primary"].replace("", "none").value_counts().to_dict()
    return Plan(interleave(by_channel), ids[held].tolist(),
                {str(k): int(v) for k, v in routed.items()})


def interleave(groups: list[list[list[Row]]]) -> list[list[Row]]:
    """The batches of every channel spread evenly over the whole send, each channel's in its
    own order: the k-th of a channel's n batches goes at (k + 1/2) / n of the way.

    A channel's provider has its own rate (Alipay: a request per member, 1,000 a second by
    default), so a campaign that sent one channel's batches after another's waited on each
    provider in turn, with the workers idle behind the slowest; spread out, the channels'
    waits overlap."""
    keyed = [((k + 0.5) / len(group), g, batch)
             for g, group in enumerate(groups) for k, batch in enumerate(group)]
    keyed.sort(key=lambda item: (item[0], item[1]))
    return [batch for _, _, batch in keyed]
