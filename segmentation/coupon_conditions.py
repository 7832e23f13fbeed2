"""Coupon conditions evaluated on the catalog's coupon facts (one row per issued coupon).

The facts come through a provider (``CouponFacts``) that the composition root builds from the
catalog's public export (``catalog.holdings.coupon_facts``), so segmentation never reads the
catalog's store. Columns: member_id, template_id, campaign_id, state, issued, valid_from,
expires (None: open-ended), redeemed (the day a standing redemption happened, or None).

As of a day: coupons issued after as_of are not seen. ``holds_coupon`` means an active (unused)
coupon that has not expired on as_of; with ``expires_within_days: N`` its last valid day is at
most N days after as_of (0: expires today). ``redeemed_coupon`` counts redemptions on or before
as_of (in the window, if one is given); ``coupons_received`` counts coupons issued in the window.
Coupon holders who are neither in the members data nor buyers are not in the audience.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd

from segmentation.behaviour import CouponSpec
from segmentation.errors import InvalidInput

CouponFacts = Callable[[], "pd.DataFrame | Mapping[str, Sequence[Any]]"]
FACT_COLUMNS = ("member_id", "template_id", "campaign_id", "state", "issued", "expires",
                "redeemed")
_MISSING = np.iinfo(np.int64).min


def _day_numbers(values: pd.Series) -> npt.NDArray[np.int64]:
    """Day numbers since 1970 of a date column; ``_MISSING`` where empty."""
    stamps = pd.to_datetime(values, errors="coerce")
    raw: npt.NDArray[np.int64] = stamps.to_numpy(dtype="datetime64[D]").astype(np.int64)
    raw[stamps.isna().to_numpy()] = _MISSING
    return raw


def facts_frame(raw: pd.DataFrame | Mapping[str, Sequence[Any]]) -> pd.DataFrame:
    """Check the provider's columns; dates become day numbers (``_MISSING`` when empty)."""
    frame = raw if isinstance(raw, pd.DataFrame) else pd.DataFrame(dict(raw))
    for column in FACT_COLUMNS:
        if column not in frame.columns:
            raise InvalidInput(f"coupon_facts.{column}", "missing from the coupon facts")
    return pd.DataFrame({
        "member_id": frame["member_id"].astype(str).to_numpy(),
        "template_id": frame["template_id"].astype(str).to_numpy(),
        "campaign_id": frame["campaign_id"].fillna("").astype(str).to_numpy(),
        "active": (frame["state"].astype(str) == "active").to_numpy(),
        "issued": _day_numbers(frame["issued"]),
        "expires": _day_numbers(frame["expires"]),
        "redeemed": _day_numbers(frame["redeemed"]),
    })


def _positions(member_ids: pd.Series, holders: pd.Series) -> npt.NDArray[np.intp]:
    """Row of each coupon's holder in ``member_ids`` (-1: not in the audience). Integer ids
    match as integers (the catalog keeps ids as text; "007" is not member 7)."""
    ids = member_ids.to_numpy()
    if ids.dtype.kind in "iu":
        numbers = pd.to_numeric(holders, errors="coerce")
        canonical = numbers.notna().to_numpy() & (
            numbers.fillna(0).astype(np.int64).astype(str) == holders).to_numpy()
        found = np.full(len(holders), -1, np.intp)
        found[canonical] = pd.Index(ids).get_indexer(
            numbers[canonical].astype(np.int64).to_numpy())
        return found
    text: npt.NDArray[np.intp] = pd.Index(member_ids.astype(str).to_numpy()).get_indexer(
        holders.to_numpy())
    return text


def coupon_columns(specs: Sequence[CouponSpec], facts: pd.DataFrame, member_ids: pd.Series,
                   *, as_of: dt.date) -> dict[str, npt.NDArray[np.int64]]:
    """One count per member (aligned with ``member_ids``) for each spec: coupons held, coupons
    redeemed or coupons received that match it."""
    as_of_day = (as_of - dt.date(1970, 1, 1)).days
    positions = _positions(member_ids, facts["member_id"])
    known = positions >= 0
    issued = facts["issued"].to_numpy()
    expires = facts["expires"].to_numpy()
    redeemed = facts["redeemed"].to_numpy()
    seen = known & (issued != _MISSING) & (issued <= as_of_day)
    out: dict[str, npt.NDArray[np.int64]] = {}
    for spec in specs:
        keep = seen.copy()
        if spec.templates:
            keep &= facts["template_id"].isin(spec.templates).to_numpy()
        if spec.campaigns:
            keep &= facts["campaign_id"].isin(spec.campaigns).to_numpy()
        if spec.kind == "holds":
            open_ended = expires == _MISSING
            keep &= facts["active"].to_numpy() & (open_ended | (expires >= as_of_day))
            if spec.expires_within_days is not None:
                keep &= ~open_ended & (expires - as_of_day <= spec.expires_within_days)
        else:
            first, last = spec.window.day_range(as_of_day)
            when = redeemed if spec.kind == "redeemed" else issued
            keep &= (when != _MISSING) & (when >= first) & (when <= last)
        out[spec.column] = np.bincount(positions[keep], minlength=len(member_ids)).astype(np.int64)
    return out
