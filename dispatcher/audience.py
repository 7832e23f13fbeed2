"""A campaign's audience as one frame of members: from a snapshot directory (verified against its
manifest and fingerprint), a rules file evaluated now and frozen as a snapshot, or a plain
Parquet/CSV file of members (the quick path of ``campaign run --snapshot FILE``)."""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING

import pandas as pd

from dispatcher.definition import Audience
from dispatcher.errors import DefinitionError
from infra.textfiles import detect_encoding
from segmentation.errors import SegmentationError

if TYPE_CHECKING:
    from segmentation.coupon_conditions import CouponFacts
    from segmentation.tags import TagStore


def read_member_file(path: Path, *, field: str = "audience.snapshot") -> pd.DataFrame:
    """A Parquet or CSV file with one row per member (column ``member_id``)."""
    try:
        frame = (pd.read_csv(path, encoding=detect_encoding(path)) if path.suffix == ".csv"
                 else pd.read_parquet(path))
    except (ValueError, OSError) as exc:
        raise DefinitionError(field, f"{path}: cannot read ({exc})") from None
    if "member_id" not in frame:
        raise DefinitionError(field, f"{path}: needs a member_id column")
    return frame


def _one_segment(members: pd.DataFrame, segment: str, field: str) -> pd.DataFrame:
    if "segment" not in members:
        return members
    names = list(dict.fromkeys(members["segment"].astype(str)))
    if not segment:
        if len(names) > 1:
            raise DefinitionError("audience.segment", f"the {field} has several segments "
                                  f"({', '.join(names)}): name one")
        return members
    if segment not in names:
        raise DefinitionError("audience.segment", f"{segment!r} is not in the {field} "
                              f"({', '.join(names)})")
    return members[members["segment"].astype(str) == segment]


def load_audience(audience: Audience, *, freeze_into: Path | None = None,
                  as_of: date | None = None, coupon_facts: CouponFacts | None = None,
                  tags: TagStore | None = None) -> pd.DataFrame:
    """The members ``audience`` names, one row each; raises ``DefinitionError`` naming the field.

    A snapshot directory must match its manifest's fingerprint (an edited or half-copied
    snapshot is refused). A rules file is evaluated now; with ``freeze_into`` the result is
    written there as a snapshot, so the campaign keeps what it sent to. Rules with coupon or tag
    conditions read ``coupon_facts`` and ``tags``; time conditions count from ``as_of``."""
    from segmentation.snapshot import read_snapshot, take_snapshot, write_snapshot

    if audience.snapshot is not None:
        path = audience.snapshot
        if path.is_file():
            return read_member_file(path)
        if not path.is_dir():
            raise DefinitionError("audience.snapshot", f"{path}: no such snapshot directory")
        try:
            snapshot = read_snapshot(path)
        except SegmentationError as exc:
            raise DefinitionError("audience.snapshot", str(exc)) from None
        members = _one_segment(snapshot.members, audience.segment, "snapshot")
    else:
        from segmentation.audience import evaluate_rules
        from segmentation.rules import load_rules

        assert audience.rules is not None
        try:
            evaluation = evaluate_rules(load_rules(audience.rules), as_of=as_of,
                                        coupon_facts=coupon_facts, tags=tags)
            snapshot = take_snapshot(evaluation, segments=[audience.segment])
            if freeze_into is not None:
                write_snapshot(snapshot, freeze_into)
        except SegmentationError as exc:
            raise DefinitionError("audience.rules", str(exc)) from None
        members = snapshot.members
    return members.drop_duplicates("member_id").reset_index(drop=True)
