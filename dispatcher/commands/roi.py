"""``quanpai roi``: did the campaign pay? Uplift over the holdout with a 95 % interval, costs, ROI.

    quanpai roi [--campaign ID] [--by campaign|segment|channel|store|template|day]
                [--format table|csv|json] [--chart FILE.png] [--lang zh-CN|en]

Campaign names come from the dispatcher's campaign store (fed into the campaigns dimension here,
the composition root, so analytics never imports the dispatcher). With the embedded chDB, the
process that owns it answers (``infra.chdb_service``): this command works while
``quanpai loader`` runs; when nothing else runs it owns chDB itself and loads what waits first.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from rich.table import Table

from analytics.dimensions import CampaignInfo, upsert_campaigns
from analytics.errors import UnknownCampaign
from analytics.labels import LANGS
from analytics.loader import drain
from analytics.render import as_csv, as_json, as_table, draw_chart
from analytics.report import BY, roi_config, roi_report
from analytics.roi import CampaignRoi
from analytics.schema import ensure_schema
from analytics.stream import StreamReader
from infra.chdb_service import ChdbOwner, open_clickhouse
from infra.cli_support import UsageError
from infra.clickhouse import ClickHouse
from infra.errors import QuanpaiError, ServiceError
from infra.redis_client import make_redis
from infra.services import resolve_redis_url
from infra.settings import Settings


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = sub.add_parser("roi", help="campaign ROI: holdout uplift with a 95% interval")
    parser.add_argument("--campaign", default=None, help="one campaign id (default: all)")
    parser.add_argument("--by", choices=BY, default="campaign", help="group rows by")
    parser.add_argument("--format", choices=("table", "csv", "json"), default="table")
    parser.add_argument("--chart", type=Path, default=None, metavar="FILE.png",
                        help="also draw the funnel and the uplift with its interval")
    parser.add_argument("--lang", choices=LANGS, default=None,
                        help="labels (default: QUANPAI_LANG, zh-CN)")
    parser.set_defaults(func=run)


def roi_table(rows: list[CampaignRoi], *, title: str = "活动 ROI") -> Table:
    """The campaign counts (``analytics.roi.campaign_roi``) as a table (the demo prints it)."""
    table = Table(title=title)
    for name in ("活动", "已发券", "已发送", "已送达", "失败", "对照组", "核销", "订单 ¥",
                 "优惠 ¥", "券成本 ¥"):
        table.add_column(name, justify="left" if name == "活动" else "right")
    for r in rows:
        table.add_row(r.campaign_id, f"{r.issued:,}", f"{r.sent:,}", f"{r.delivered:,}",
                      f"{r.failed:,}", f"{r.held_out:,}", f"{r.redeemed:,}",
                      *(f"{fen / 100:,.2f}" for fen in (r.order_amount_fen, r.discount_fen,
                                                         r.cost_fen)))
    return table


def send_prices(settings: Settings) -> dict[str, int]:
    """Price per message of each channel, as the dispatcher routes by it."""
    from dispatcher.launch import DEFAULT_PRICES_FEN
    from dispatcher.operations import parse_prices

    return {**DEFAULT_PRICES_FEN, **parse_prices(settings.channel_prices)}


def campaign_infos(settings: Settings) -> list[CampaignInfo]:
    """The dispatcher's campaigns as dimension rows ([] when Redis is not reachable)."""
    from dispatcher.campaigns import CampaignStore

    try:
        client = make_redis(resolve_redis_url(settings))
        store = CampaignStore(client=client)
        found = []
        for campaign_id in store.list_ids():
            try:
                c = store.get(campaign_id)
            except QuanpaiError:
                continue
            found.append(CampaignInfo(c.merchant_id, c.campaign_id, c.name, c.template_id,
                                      tuple(c.channels), c.holdout_permille, c.created_at))
        return found
    except (ServiceError, OSError):
        return []
    except Exception as exc:  # a Redis connection error: report without names
        if type(exc).__module__.startswith("redis"):
            return []
        raise


def prepare(ch: ClickHouse, settings: Settings) -> None:
    """Schema, campaign names and (when this process owns chDB) the events waiting in Redis."""
    ensure_schema(ch)
    upsert_campaigns(ch, campaign_infos(settings))
    if isinstance(ch, ChdbOwner):
        try:
            client = make_redis(resolve_redis_url(settings))
        except ServiceError:
            return  # no Redis running: report what is already loaded
        reader = StreamReader(client=client, stream=settings.events_stream,
                              consumer=f"roi-{os.getpid()}")
        drain(reader=reader, ch=ch)


def run(args: argparse.Namespace, settings: Settings) -> int:
    from rich.console import Console

    config = roi_config(settings, send_price_fen=send_prices(settings))
    lang = args.lang or settings.lang
    ch = open_clickhouse(settings)
    try:
        prepare(ch, settings)
        reports = roi_report(ch, merchant_id=settings.merchant_id, campaign_id=args.campaign,
                             by=args.by, config=config)
    except UnknownCampaign as exc:
        raise UsageError(str(exc)) from None
    finally:
        ch.close()
    if args.format == "json":
        sys.stdout.write(as_json(reports, config=config) + "\n")
    elif args.format == "csv":
        sys.stdout.write(as_csv(reports, config=config, lang=lang))
    else:
        Console(width=max(Console().width, 200)).print(
            as_table(reports, config=config, lang=lang))
    if args.chart is not None:
        draw_chart(reports, args.chart, config=config, lang=lang)
        print(f"chart: {args.chart}", file=sys.stderr)
    return 0
