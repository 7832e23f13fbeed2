"""Campaign and template dimensions: names for the reports, fed by the composition root.

Analytics does not know where campaigns and templates are defined (the dispatcher and the
catalog do); whoever runs a report passes their current metadata here. Rows carry
``updated_at``, so writing the same campaign again replaces its row when parts merge, and
queries take the newest row (``argMax(name, updated_at)``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from analytics.schema import CAMPAIGNS_TABLE, TEMPLATES_TABLE
from infra.clickhouse import ClickHouse


@dataclass(frozen=True)
class CampaignInfo:
    merchant_id: str
    campaign_id: str
    name: str
    template_id: str = ""
    channels: tuple[str, ...] = ()
    holdout_permille: int = 0
    created_at: str = ""


@dataclass(frozen=True)
class TemplateInfo:
    merchant_id: str
    template_id: str
    name: str
    kind: str = ""


def _known(ch: ClickHouse, table: str, key: str) -> set[tuple[str, ...]]:
    rows = ch.query(f"SELECT merchant_id, {key}, argMax(name, updated_at) FROM {table} "
                    f"GROUP BY merchant_id, {key}")
    return {tuple(str(v) for v in row) for row in rows}


def upsert_campaigns(ch: ClickHouse, campaigns: Sequence[CampaignInfo]) -> int:
    """Write the campaigns whose name is new or changed; returns how many were written."""
    known = _known(ch, CAMPAIGNS_TABLE, "campaign_id")
    now = datetime.now(UTC).replace(microsecond=0)
    rows = [(c.merchant_id, c.campaign_id, c.name, c.template_id, ",".join(c.channels),
             c.holdout_permille, c.created_at, now) for c in campaigns
            if (c.merchant_id, c.campaign_id, c.name) not in known]
    ch.insert(CAMPAIGNS_TABLE, ("merchant_id", "campaign_id", "name", "template_id", "channels",
                                "holdout_permille", "created_at", "updated_at"), rows)
    return len(rows)


def upsert_templates(ch: ClickHouse, templates: Sequence[TemplateInfo]) -> int:
    """Write the templates whose name is new or changed; returns how many were written."""
    known = _known(ch, TEMPLATES_TABLE, "template_id")
    now = datetime.now(UTC).replace(microsecond=0)
    rows = [(t.merchant_id, t.template_id, t.name, t.kind, now) for t in templates
            if (t.merchant_id, t.template_id, t.name) not in known]
    ch.insert(TEMPLATES_TABLE, ("merchant_id", "template_id", "name", "kind", "updated_at"), rows)
    return len(rows)
