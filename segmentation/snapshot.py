"""Snapshots: a segment evaluated at a moment, frozen, so a campaign sends to exactly what was
previewed.

A snapshot directory holds ``members.parquet`` (one row per rule segment and member: the member
id and the attributes the channels need: name, phone, WeChat openid and subscription, Alipay
user id, consents, reachability per channel, tier, home store, RFM segment and code) and
``manifest.json`` (rules name and SHA-256 of the rules text, the evaluation day, the RFM as-of
date, counts, and a fingerprint of the (segment, member) pairs). The preview prints the same
fingerprint, so an operator can see that the campaign got the audience they looked at.
Directories are written to a temporary name and renamed into place: there is never a
half-written snapshot, and an existing one is never overwritten.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from segmentation.audience import Evaluation
from segmentation.conditions import CHANNELS, reachable
from segmentation.errors import InvalidInput

CHANNEL_COLUMNS = (
    "name", "phone", "wechat_openid", "wechat_subscribed", "alipay_user_id",
    "consent_sms", "consent_wechat", "consent_alipay", "tier", "home_store_id",
    "rfm_segment", "rfm_code",
)
FORMAT_VERSION = 1


@dataclass(frozen=True)
class Snapshot:
    """A frozen audience: ``members`` has one row per (segment, member)."""

    name: str
    rules_sha256: str
    today: dt.date
    as_of: dt.date
    taken_at: dt.datetime
    counts: dict[str, int]
    fingerprint: str
    members: pd.DataFrame

    def member_ids(self, segment: str) -> list[Any]:
        """The member ids of one segment, ascending."""
        if segment not in self.counts:
            raise InvalidInput("segment", f"{segment!r} is not in this snapshot "
                               f"({', '.join(self.counts)})")
        chosen = self.members[self.members.segment == segment]
        return list(chosen.member_id.tolist())


def fingerprint(pairs: pd.DataFrame) -> str:
    """SHA-256 over the sorted (segment, member_id) pairs: equal audiences, equal fingerprints."""
    ordered = pairs.sort_values(["segment", "member_id"], kind="stable")
    digest = hashlib.sha256()
    for segment, group in ordered.groupby("segment", sort=True, observed=True):
        digest.update(str(segment).encode() + b"\0")
        ids = group.member_id.to_numpy()
        if ids.dtype.kind in "iu":
            digest.update(np.ascontiguousarray(ids.astype(np.int64)).tobytes())
        else:
            digest.update("\0".join(map(str, ids)).encode())
    return digest.hexdigest()


def audience_pairs(evaluation: Evaluation, segments: list[str] | None = None) -> pd.DataFrame:
    """The evaluation's members per segment, with the attributes channels need."""
    names = segments or list(evaluation.masks)
    frame = evaluation.frame
    columns = ["member_id", *[c for c in CHANNEL_COLUMNS if c in frame.columns]]
    parts = []
    for name in names:
        chosen = evaluation.members_of(name)
        part = chosen[columns].copy()
        for channel in CHANNELS:
            part[f"reachable_{channel}"] = reachable(chosen, channel)
        part.insert(0, "segment", name)
        parts.append(part)
    pairs = pd.concat(parts, ignore_index=True)
    for column in ("rfm_segment", "rfm_code"):
        if column in pairs.columns:
            pairs[column] = pairs[column].astype("string")
    return pairs


def take_snapshot(evaluation: Evaluation, *, segments: list[str] | None = None,
                  taken_at: dt.datetime | None = None) -> Snapshot:
    """Freeze the evaluation (all segments, or the named ones)."""
    pairs = audience_pairs(evaluation, segments)
    counts = {name: int((pairs.segment == name).sum())
              for name in (segments or list(evaluation.masks))}
    return Snapshot(
        name=evaluation.rules.name,
        rules_sha256=hashlib.sha256(evaluation.rules.source_text.encode()).hexdigest(),
        today=evaluation.today,
        as_of=evaluation.as_of,
        taken_at=taken_at or dt.datetime.now(evaluation.rules.timezone),
        counts=counts,
        fingerprint=fingerprint(pairs),
        members=pairs,
    )


def _manifest(snapshot: Snapshot) -> dict[str, Any]:
    return {
        "format": FORMAT_VERSION,
        "name": snapshot.name,
        "rules_sha256": snapshot.rules_sha256,
        "today": snapshot.today.isoformat(),
        "as_of": snapshot.as_of.isoformat(),
        "taken_at": snapshot.taken_at.isoformat(),
        "counts": snapshot.counts,
        "fingerprint": snapshot.fingerprint,
    }


def write_snapshot(snapshot: Snapshot, directory: Path) -> Path:
    """Write the snapshot into ``directory`` (which must not exist yet); returns it."""
    if directory.exists():
        raise InvalidInput("out", f"{directory} already exists; snapshots are never overwritten")
    directory.parent.mkdir(parents=True, exist_ok=True)
    staging = directory.parent / f".{directory.name}.partial-{os.getpid()}"
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir()
    try:
        snapshot.members.to_parquet(staging / "members.parquet", index=False)
        (staging / "manifest.json").write_text(
            json.dumps(_manifest(snapshot), ensure_ascii=False, indent=2) + "\n", encoding="utf-8"
        )
        staging.rename(directory)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return directory


def read_snapshot(directory: Path) -> Snapshot:
    """Load a snapshot and check its members against the manifest's fingerprint."""
    try:
        manifest = json.loads((directory / "manifest.json").read_text(encoding="utf-8"))
        members = pd.read_parquet(directory / "members.parquet")
    except (OSError, ValueError) as exc:
        raise InvalidInput("snapshot", f"{directory} is not a readable snapshot: {exc}") from None
    if manifest.get("format") != FORMAT_VERSION:
        raise InvalidInput("snapshot", f"{directory}: unknown format {manifest.get('format')!r}")
    if fingerprint(members) != manifest["fingerprint"]:
        raise InvalidInput("snapshot", f"{directory}: members do not match the manifest")
    return Snapshot(
        name=manifest["name"],
        rules_sha256=manifest["rules_sha256"],
        today=dt.date.fromisoformat(manifest["today"]),
        as_of=dt.date.fromisoformat(manifest["as_of"]),
        taken_at=dt.datetime.fromisoformat(manifest["taken_at"]),
        counts={str(k): int(v) for k, v in manifest["counts"].items()},
        fingerprint=manifest["fingerprint"],
        members=members,
    )
