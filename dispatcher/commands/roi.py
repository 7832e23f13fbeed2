"""``quanpai roi [--campaign ID]``: issued / sent / failed ... per campaign, from ClickHouse.

With the embedded chDB, pending events are loaded first (chDB lives in this process, so there is
no separate loader to wait for); with a ClickHouse server the loader process does that.
"""

from __future__ import annotations

import argparse
import os

from rich.console import Console
from rich.table import Table

from analytics.loader import drain
from analytics.roi import CampaignRoi, campaign_roi
from analytics.schema import ensure_schema
from analytics.stream import StreamReader
from infra.clickhouse import make_clickhouse
from infra.errors import ServiceError
from infra.redis_client import make_redis
from infra.services import resolve_redis_url
from infra.settings import Settings


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = sub.add_parser("roi", help="print campaign ROI from ClickHouse")
    parser.add_argument("--campaign", default=None, help="one campaign id (default: all)")
    parser.set_defaults(func=run)


def _yuan(fen: int) -> str:
    return f"{fen / 100:,.2f}"


def roi_table(rows: list[CampaignRoi], *, title: str = "Campaign ROI") -> Table:
    table = Table(title=title)
    for name in ("campaign", "issued", "sent", "delivered", "failed", "held out", "redeemed",
                 "order ¥", "discount ¥", "cost ¥"):
        table.add_column(name, justify="left" if name == "campaign" else "right")
    for r in rows:
        table.add_row(r.campaign_id, f"{r.issued:,}", f"{r.sent:,}", f"{r.delivered:,}",
                      f"{r.failed:,}", f"{r.held_out:,}", f"{r.redeemed:,}",
                      _yuan(r.order_amount_fen), _yuan(r.discount_fen), _yuan(r.cost_fen))
    return table


def run(args: argparse.Namespace, settings: Settings) -> int:
    ch = make_clickhouse(settings)
    try:
        ensure_schema(ch)
        if ch.kind == "chdb":
            try:
                client = make_redis(resolve_redis_url(settings))
            except ServiceError:
                client = None  # no Redis running: report what is already loaded
            if client is not None:
                reader = StreamReader(client=client, stream=settings.events_stream,
                                      consumer=f"roi-{os.getpid()}")
                drain(reader=reader, ch=ch)
        rows = campaign_roi(ch, merchant_id=settings.merchant_id, campaign_id=args.campaign)
        Console(width=max(Console().width, 120)).print(roi_table(rows))
        return 0
    finally:
        ch.close()
