"""``quanpai segment``: segmentation's commands, with the catalog's coupon facts wired in here,
at the top, so segmentation never imports the catalog."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

from infra.settings import Settings

if TYPE_CHECKING:
    from segmentation.coupon_conditions import CouponFacts


def coupon_facts_provider(settings: Settings) -> CouponFacts:
    """Coupon facts of the merchant from the catalog's Redis, read when a rule asks."""
    import pandas as pd

    from catalog.holdings import coupon_facts
    from infra.redis_client import make_redis
    from infra.services import resolve_redis_url

    client = make_redis(resolve_redis_url(settings))
    return lambda: pd.DataFrame(coupon_facts(client, settings.merchant_id))


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """``segmentation.cli.register`` with the coupon facts provider."""
    from segmentation.cli import register as register_segment

    register_segment(sub, coupon_facts=coupon_facts_provider)
