"""Benchmark results and the report ``make bench`` writes.

A scenario is a module in ``bench/scenarios/`` with ``run(*, size: str) -> list[Result]``;
``size`` is ``"quick"`` (seconds, for a smoke run) or ``"full"`` (the sizes the targets are for).
"""

from __future__ import annotations

import json
import os
import platform
from dataclasses import asdict, dataclass, replace
from datetime import datetime
from pathlib import Path
from typing import Literal
from zoneinfo import ZoneInfo


@dataclass(frozen=True)
class Result:
    scenario: str
    metric: str
    value: float
    unit: str
    target: float | None = None
    better: Literal["lower", "higher"] = "lower"
    measured_at: str = ""  # set when the report is written; kept for rows not re-run

    @property
    def ok(self) -> bool | None:
        if self.target is None:
            return None
        return self.value <= self.target if self.better == "lower" else self.value >= self.target


def machine() -> dict[str, object]:
    pages = os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    return {
        "cores": os.cpu_count(),
        "memory_gib": round(pages / 2**30, 1),
        "cpu": platform.processor() or platform.machine(),
        "python": platform.python_version(),
        "date": datetime.now(ZoneInfo("Asia/Shanghai")).isoformat(timespec="seconds"),
    }


def earlier_results(out_dir: Path, *, except_scenarios: list[str]) -> list[Result]:
    """The rows of the last report, but those of ``except_scenarios`` (module names; a
    scenario's rows are named for it, as in ``flow 100,000 members``): what a partial run
    (``--only``) keeps."""
    path = out_dir / "latest.json"
    if not path.is_file():
        return []
    kept = []
    for row in json.loads(path.read_text()):
        scenario = str(row["scenario"])
        if any(scenario == n or scenario.startswith(n + " ") for n in except_scenarios):
            continue
        row.pop("ok", None)
        kept.append(Result(**row))
    return kept


def write_report(results: list[Result], *, out_dir: Path, size: str) -> tuple[Path, Path]:
    out_dir.mkdir(parents=True, exist_ok=True)
    info = machine()
    results = [r if r.measured_at else replace(r, measured_at=str(info["date"]))
               for r in results]
    rows = [{**asdict(r), "ok": r.ok} for r in results]
    json_path = out_dir / "latest.json"
    json_path.write_text(json.dumps(rows, indent=2, ensure_ascii=False) + "\n")
    lines = [
        "# Quanpai benchmarks",
        "",
        f"{info['date']} · {info['cores']} cores · {info['memory_gib']} GiB · "
        f"Python {info['python']} · size {size}",
        "",
        "| scenario | metric | value | unit | target | ok |",
        "|---|---|---:|---|---:|---|",
    ]
    older = sorted({(r.scenario, r.measured_at) for r in results
                    if r.measured_at != info["date"]})
    if older:
        lines[4:4] = ["Measured earlier and kept: " + "; ".join(
            f"{scenario} ({date})" for scenario, date in older), ""]
    for r in results:
        target = "" if r.target is None else f"{'≤' if r.better == 'lower' else '≥'} {r.target:g}"
        ok = {True: "yes", False: "**no**", None: ""}[r.ok]
        lines.append(f"| {r.scenario} | {r.metric} | {r.value:,.6g} | {r.unit} | {target} | {ok} |")
    md_path = out_dir / "latest.md"
    md_path.write_text("\n".join(lines) + "\n")
    return json_path, md_path
