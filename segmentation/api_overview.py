"""Read-only views of the segment data for the console: the RFM heatmap and the saved snapshots.

- ``GET /v1/segments/rfm-heatmap``  members per R score x F score (today, every buyer)
- ``GET /v1/segments/snapshots``    the snapshots saved under ``var/snapshots`` (newest first),
  each with the directory a campaign's ``audience.snapshot`` names

Both use the ``SegmentService`` of ``segmentation.api``; the snapshot list reads only each
snapshot's ``manifest.json``, never its member file.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Annotated, Any

import msgspec
from aiohttp import web
from msgspec import Meta

from infra.http_api import Route, respond

# every member, buyer or not: the heatmap counts those with scores
EVERYONE = {"any": [{"has_purchased": True}, {"has_purchased": False}]}


class HeatmapOut(msgspec.Struct, kw_only=True):
    bins: int
    cells: Annotated[list[tuple[int, int, int]], Meta(description="[r_score, f_score, members]")]


class SnapshotInfo(msgspec.Struct, kw_only=True):
    snapshot: Annotated[str, Meta(description="the directory a campaign's audience.snapshot "
                                              "names")]
    name: str
    count: int
    fingerprint: str
    taken_at: str


class SnapshotList(msgspec.Struct):
    snapshots: list[SnapshotInfo]


async def rfm_heatmap(request: web.Request) -> web.Response:
    from segmentation.api import service_of

    service = service_of(request)
    condition = service.parse(EVERYONE)
    async with service.lock:
        evaluation = await asyncio.get_running_loop().run_in_executor(
            None, service.evaluate, condition, None)
    frame = evaluation.frame.dropna(subset=["r_score", "f_score"])
    counts = frame.groupby([frame.r_score.astype(int), frame.f_score.astype(int)]).size()
    bins = evaluation.rules.bins
    cells = [(r, f, int(counts.get((r, f), 0)))
             for r in range(1, bins + 1) for f in range(1, bins + 1)]
    return respond(HeatmapOut(bins=bins, cells=cells))


def _snapshots(directory: Path) -> list[SnapshotInfo]:
    found: list[SnapshotInfo] = []
    if not directory.is_dir():
        return found
    for path in sorted(directory.iterdir(), key=lambda p: p.stat().st_mtime, reverse=True):
        try:
            manifest: dict[str, Any] = json.loads(
                (path / "manifest.json").read_text(encoding="utf-8"))
            counts = {str(k): int(v) for k, v in manifest["counts"].items()}
            found.append(SnapshotInfo(snapshot=str(path.resolve()), name=next(iter(counts), ""),
                                      count=sum(counts.values()),
                                      fingerprint=str(manifest["fingerprint"]),
                                      taken_at=str(manifest["taken_at"])))
        except (OSError, ValueError, KeyError, AttributeError):
            continue  # a staging directory or something that is not a snapshot
    return found


async def list_snapshots(request: web.Request) -> web.Response:
    from segmentation.api import service_of

    directory = service_of(request).snapshots
    found = await asyncio.get_running_loop().run_in_executor(None, _snapshots, directory)
    return respond(SnapshotList(found))


ROUTES = [
    Route("GET", "/v1/segments/rfm-heatmap", rfm_heatmap, "members per R score x F score",
          ("operator", "analyst"), responses={200: HeatmapOut}, tags=("segments",)),
    Route("GET", "/v1/segments/snapshots", list_snapshots,
          "the saved snapshots, newest first", ("operator", "analyst"),
          responses={200: SnapshotList}, tags=("segments",)),
]
