"""``make bench``: run every scenario in ``bench/scenarios`` and write the report.

    python -m bench.run [--size quick|full] [--only NAME ...]

Each scenario runs in a process of its own (``--scenario NAME --rows FILE``): one that ends
leaves nothing behind for the next to pay for (an embedded ClickHouse's background threads,
imported modules, garbage), so each row measures its own scenario whatever ran before it.
"""

from __future__ import annotations

import argparse
import importlib
import json
import pkgutil
import subprocess
import sys
import tempfile
import traceback
from dataclasses import asdict
from pathlib import Path

from bench import scenarios
from bench.report import Result, earlier_results, write_report


def run_scenario(name: str, *, size: str, rows: Path) -> int:
    """Run one scenario in this process and write its rows to ``rows`` (JSON)."""
    module = importlib.import_module(f"bench.scenarios.{name}")
    try:
        got: list[Result] = module.run(size=size)
    except Exception:
        traceback.print_exc()
        return 1
    rows.write_text(json.dumps([asdict(r) for r in got], ensure_ascii=False))
    return 0


def _in_own_process(name: str, *, size: str) -> list[Result] | None:
    """The scenario's rows, run by a fresh interpreter; None when it failed."""
    with tempfile.TemporaryDirectory(prefix="quanpai-bench-") as tmp:
        rows = Path(tmp) / "rows.json"
        done = subprocess.run([sys.executable, "-m", "bench.run", "--size", size,
                               "--scenario", name, "--rows", str(rows)], check=False)
        if done.returncode != 0 or not rows.is_file():
            return None
        return [Result(**row) for row in json.loads(rows.read_text())]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="bench")
    parser.add_argument("--size", choices=["quick", "full"], default="full")
    parser.add_argument("--only", nargs="*", default=None, help="scenario module names")
    parser.add_argument("--out", type=Path, default=Path("bench/results"))
    parser.add_argument("--scenario", help=argparse.SUPPRESS)  # the child of one scenario
    parser.add_argument("--rows", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.scenario:
        return run_scenario(args.scenario, size=args.size, rows=args.rows)
    names = sorted(m.name for m in pkgutil.iter_modules(scenarios.__path__))
    if args.only:
        names = [n for n in names if n in args.only]
    results: list[Result] = []
    failed = False
    for name in names:
        print(f"== {name} ({args.size})", flush=True)
        got = _in_own_process(name, size=args.size)
        if got is None:
            failed = True
            continue
        for r in got:
            mark = "ok" if r.ok else "MISSED"
            verdict = "" if r.ok is None else f" (target {r.target:g}: {mark})"
            print(f"   {r.metric}: {r.value:,.6g} {r.unit}{verdict}", flush=True)
        results.extend(got)
    if args.only:  # a partial run keeps the other scenarios' last figures
        results = earlier_results(args.out, except_scenarios=names) + results
    json_path, md_path = write_report(results, out_dir=args.out, size=args.size)
    print(f"wrote {json_path} and {md_path}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
