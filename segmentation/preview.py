"""Previews of an evaluated rules file: counts, a masked sample, and a chart (PNG).

The chart has four panels: members per R x F score cell, average spend per cell (yuan), the
size of each RFM segment and of each rule segment. Chinese names in the chart draw with a CJK
font (``infra.i18n.use_cjk_font``; fonts-noto-cjk); the printed summary carries both names.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from segmentation.audience import Evaluation
from segmentation.snapshot import audience_pairs, fingerprint

SAMPLE_COLUMNS = ("member_id", "tier", "rfm_segment", "rfm_code", "recency_days", "frequency",
                  "monetary_total", "phone", "wechat_openid")


def mask_phone(phone: object) -> str:
    """138****5678: enough for an operator to recognise, not enough to call."""
    if phone is None or (isinstance(phone, float) and np.isnan(phone)) or phone is pd.NA:
        return ""
    text = str(phone)
    return text[:3] + "****" + text[-4:] if len(text) >= 8 else "****"


def mask_openid(openid: object) -> str:
    """oAbC…wxyz."""
    if openid is None or (isinstance(openid, float) and np.isnan(openid)) or openid is pd.NA:
        return ""
    text = str(openid)
    return text[:4] + "…" + text[-4:] if len(text) > 8 else "…"


NEVER_BOUGHT = "未购买 never bought"


def plain(shown: pd.DataFrame) -> pd.DataFrame:
    """Sample rows as an operator reads them: a member who never bought shows 0 purchase days,
    0 spend and "未购买 never bought", not NaN; whole numbers print without ".0"."""
    out = shown.copy()
    never = (out["frequency"].isna().to_numpy() if "frequency" in out.columns
             else np.zeros(len(out), bool))
    for column in ("frequency", "monetary_total"):
        if column in out.columns:
            out[column] = out[column].fillna(0).astype(np.int64)
    for column in ("rfm_segment", "rfm_code", "recency_days"):
        if column in out.columns:
            values = out[column].astype(object)
            values[never] = NEVER_BOUGHT if column == "rfm_segment" else "-"
            if column == "recency_days":
                values[~never] = [str(int(v)) for v in values[~never]]
            out[column] = values
    return out.astype(object).where(out.notna(), "")


@dataclass(frozen=True)
class PreviewSummary:
    """What the preview shows: counts, RFM segment sizes, masked samples, the fingerprint."""

    counts: dict[str, int]
    names_zh: dict[str, str]
    rfm_counts: pd.Series
    samples: dict[str, pd.DataFrame]
    fingerprint: str


def summarize(evaluation: Evaluation, *, sample: int = 5, seed: int = 0) -> PreviewSummary:
    """Counts per rule segment, RFM segment sizes, and a masked random sample per segment."""
    frame = evaluation.frame
    samples = {}
    for name, mask in evaluation.masks.items() if sample > 0 else ():
        chosen = frame[mask]
        picked = chosen.sample(n=min(sample, len(chosen)), random_state=seed)
        columns = [c for c in SAMPLE_COLUMNS if c in picked.columns]
        shown = picked[columns].copy()
        if "phone" in shown.columns:
            shown["phone"] = [mask_phone(v) for v in shown["phone"]]
        if "wechat_openid" in shown.columns:
            shown["wechat_openid"] = [mask_openid(v) for v in shown["wechat_openid"]]
        samples[name] = plain(shown)
    rfm_counts = frame["rfm_segment"].value_counts(sort=False)
    return PreviewSummary(
        counts=evaluation.counts(),
        names_zh={s.name: s.name_zh for s in evaluation.rules.segments},
        rfm_counts=rfm_counts,
        samples=samples,
        fingerprint=fingerprint(audience_pairs(evaluation)[["segment", "member_id"]]),
    )


def render_text(evaluation: Evaluation, summary: PreviewSummary) -> str:
    """The preview as the CLI prints it."""
    lines = [
        f"rules {evaluation.rules.name}: as of {evaluation.as_of} (RFM, windows, birthdays and "
        f"coupons all count from this day), {len(evaluation.frame):,} members",
        "",
        "segment counts:",
    ]
    for name, count in summary.counts.items():
        lines.append(f"  {name} ({summary.names_zh[name]}): {count:,}")
    lines += ["", "RFM segments (all buyers):"]
    for name, count in summary.rfm_counts.items():
        lines.append(f"  {name}: {int(count):,}")
    clustering = evaluation.clustering
    if clustering is not None:
        chosen = ("" if clustering.silhouette is None
                  else f", chosen by silhouette {clustering.silhouette:.2f}")
        lines += ["", f"clusters (k={clustering.k}{chosen}):"]
        for c in clustering.clusters:
            lines.append(f"  {c.number}: {c.label} ({c.label_zh}): {c.size:,} members, "
                         f"mean {c.recency_days:,.0f} days since last purchase, "
                         f"{c.frequency:,.1f} purchase days, {c.monetary_total / 100:,.0f} yuan")
    for name, shown in summary.samples.items():
        lines += ["", f"sample of {name}:"]
        lines.append(shown.to_string(index=False) if len(shown) else "  (empty)")
    lines += ["", f"audience fingerprint: {summary.fingerprint}"]
    return "\n".join(lines)


def write_chart(evaluation: Evaluation, summary: PreviewSummary, path: Path) -> Path:
    """Write the four-panel preview chart to ``path`` (PNG)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from infra.i18n import use_cjk_font

    use_cjk_font(matplotlib)
    frame = evaluation.frame
    buyers = frame[frame["r_score"].notna()]
    bins = evaluation.rules.bins
    r = buyers["r_score"].to_numpy(dtype=np.int64) - 1
    f = buyers["f_score"].to_numpy(dtype=np.int64) - 1
    cells = r * bins + f
    counts = np.bincount(cells, minlength=bins * bins).reshape(bins, bins)
    spend = np.bincount(cells, weights=buyers["monetary_total"].to_numpy(np.float64) / 100,
                        minlength=bins * bins).reshape(bins, bins)
    with np.errstate(invalid="ignore", divide="ignore"):
        average = np.where(counts > 0, spend / np.maximum(counts, 1), np.nan)

    fig, axes = plt.subplots(2, 2, figsize=(13, 10))
    for ax, grid, title, fmt in (
        (axes[0][0], counts, "members per R x F cell", "{:,.0f}"),
        (axes[0][1], average, "average spend per member (yuan)", "{:,.0f}"),
    ):
        image = ax.imshow(grid, origin="lower", cmap="YlGnBu")
        fig.colorbar(image, ax=ax, shrink=0.8)
        ax.set_xticks(range(bins), [str(i + 1) for i in range(bins)])
        ax.set_yticks(range(bins), [str(i + 1) for i in range(bins)])
        ax.set_xlabel("F score (5 = most purchase days)")
        ax.set_ylabel("R score (5 = most recent)")
        ax.set_title(title)
        dark = np.nanmax(grid) * 0.6 if np.isfinite(grid).any() else 0
        for (y, x), value in np.ndenumerate(grid):
            if not np.isnan(value):
                ax.text(x, y, fmt.format(value), ha="center", va="center", fontsize=8,
                        color="white" if value > dark else "black")
    rfm = summary.rfm_counts.sort_values()
    axes[1][0].barh([str(i) for i in rfm.index], rfm.to_numpy())
    axes[1][0].set_title("RFM segments (members)")
    rule_names = list(summary.counts)
    axes[1][1].barh(rule_names, [summary.counts[n] for n in rule_names], color="tab:orange")
    axes[1][1].set_title(f"rule segments of {evaluation.rules.name} (members)")
    fig.suptitle(f"{evaluation.rules.name}: as of {evaluation.as_of}")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
