"""The ROI report as a table (rich), CSV (UTF-8 with BOM, so Excel in China opens it) or JSON,
and as a PNG chart: the funnel and the uplift per member with its interval, labels in Chinese
drawn with a CJK font."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from rich.table import Table

from analytics.labels import DEFAULT_LANG, label, note_text
from analytics.report import CampaignReport, RoiConfig, report_json
from infra.i18n import use_cjk_font

COLUMNS = ("targeted", "held_out", "issued", "sent", "delivered", "failed_send", "unreachable",
           "in_doubt", "redeemed", "redemption_rate", "days_to_redeem")


def _yuan(fen: float | None) -> str:
    return "—" if fen is None else f"{fen / 100:,.2f}"


def _cells(row: dict[str, Any], lang: str) -> list[str]:
    cells = []
    for key in COLUMNS:
        value = row[key]
        if key == "redemption_rate":
            cells.append("—" if value is None else f"{value:.1%}")
        elif key == "days_to_redeem":
            cells.append("—" if value is None else f"{value:.1f}")
        else:
            cells.append(f"{value:,}")
    ratio = row["roi"]
    cells += [_yuan(row["coupon_cost_fen"]), _yuan(row["send_cost_fen"]),
              _yuan(row["revenue_per_treated_fen"]), _yuan(row["revenue_per_held_fen"]),
              _incremental(row), "—" if ratio is None else
              f"{ratio:.2f} [{row['roi_low']:.2f}, {row['roi_high']:.2f}]",
              note_text(row["note"], lang)]
    return cells


def _incremental(row: dict[str, Any]) -> str:
    if row["incremental_revenue_fen"] is None:
        return "—"
    return (f"{_yuan(row['incremental_revenue_fen'])} [{_yuan(row['incremental_revenue_low_fen'])}"
            f", {_yuan(row['incremental_revenue_high_fen'])}]")


def _headers(lang: str) -> list[str]:
    return [label(k, lang) for k in ("campaign", "value", *COLUMNS, "coupon_cost", "send_cost",
                                     "revenue_treated", "revenue_held", "incremental", "roi")] \
        + ["note"]


def _name(campaign: dict[str, Any]) -> str:
    return f"{campaign['name']} ({campaign['campaign_id']})" if campaign["name"] \
        else campaign["campaign_id"]


def as_table(reports: Sequence[CampaignReport], *, config: RoiConfig,
             lang: str = DEFAULT_LANG) -> Table:
    data = report_json(reports, config=config)
    table = Table(title=label("title", lang), caption=label(
        "method", lang, margin=config.margin_permille, days=config.attribution_days))
    for i, name in enumerate(_headers(lang)):
        table.add_column(name, justify="left" if i < 2 or i == 19 else "right")
    for campaign in data["campaigns"]:
        for row in campaign["rows"]:
            table.add_row(_name(campaign), _value(row["value"], lang), *_cells(row, lang))
    return table


def _value(value: str, lang: str) -> str:
    return label(value, lang) if value in ("no_purchase", "loyal", "active", "lapsing",
                                           "dormant", "none") else value


def as_csv(reports: Sequence[CampaignReport], *, config: RoiConfig,
           lang: str = DEFAULT_LANG) -> str:
    """One row per campaign and group, every JSON field as a column (money in fen)."""
    data = report_json(reports, config=config)
    out = io.StringIO()
    writer: Any = None
    for campaign in data["campaigns"]:
        for row in campaign["rows"]:
            flat = {"campaign_id": campaign["campaign_id"], "campaign_name": campaign["name"],
                    "start": campaign["start"], "end": campaign["end"], **row,
                    "messages": json.dumps(row["messages"]),
                    "note": note_text(row["note"], lang)}
            if writer is None:
                writer = csv.DictWriter(out, fieldnames=list(flat))
                writer.writeheader()
            writer.writerow(flat)
    return "\ufeff" + out.getvalue()


def as_json(reports: Sequence[CampaignReport], *, config: RoiConfig) -> str:
    return json.dumps(report_json(reports, config=config), ensure_ascii=False, indent=2)


def draw_chart(reports: Sequence[CampaignReport], path: Path, *, config: RoiConfig,
               lang: str = DEFAULT_LANG) -> None:
    """Funnel (left) and uplift per member with its 95 % interval (right), one bar per row."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    use_cjk_font(matplotlib)
    data = report_json(reports, config=config)
    rows = [(c, r) for c in data["campaigns"] for r in c["rows"]]
    fig, (funnel_ax, uplift_ax) = plt.subplots(1, 2, figsize=(12, 1.2 + 0.6 * max(len(rows), 3)))
    steps = ("targeted", "issued", "sent", "delivered", "redeemed")
    totals = [sum(r[s] for _, r in rows) for s in steps]
    names = [label(s, lang) for s in steps]
    funnel_ax.barh(names[::-1], totals[::-1], color="#3b7dd8")
    for y, value in enumerate(totals[::-1]):
        funnel_ax.text(value, y, f" {value:,}", va="center")
    funnel_ax.set_title(label("funnel", lang))
    funnel_ax.set_xlabel(label("members", lang))
    labels, mids, errors = [], [], []
    for campaign, row in rows:
        labels.append(f"{campaign['name'] or campaign['campaign_id']} {_value(row['value'], lang)}"
                      .strip())
        if row["uplift_per_member_fen"] is None:
            mids.append(0.0)
            errors.append((0.0, 0.0))
        else:
            mid = row["uplift_per_member_fen"] / 100
            low = row["incremental_revenue_low_fen"] / max(row["targeted"], 1) / 100
            high = row["incremental_revenue_high_fen"] / max(row["targeted"], 1) / 100
            mids.append(mid)
            errors.append((mid - low, high - mid))
    ys = list(range(len(labels)))
    uplift_ax.errorbar(mids, ys, xerr=list(zip(*errors, strict=True)) if errors else None,
                       fmt="o", color="#d8553b", capsize=4)
    uplift_ax.axvline(0, color="#888", linewidth=1)
    uplift_ax.set_yticks(ys, labels)
    uplift_ax.set_title(label("uplift_chart", lang))
    fig.suptitle(label("method", lang, margin=config.margin_permille,
                       days=config.attribution_days), fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
