"""``make bench``: run every scenario in ``bench/scenarios`` and write the report.

    python -m bench.run [--size quick|full] [--only NAME ...]
"""

from __future__ import annotations

import argparse
import importlib
import pkgutil
import sys
import traceback
from pathlib import Path

from bench import scenarios
from bench.report import Result, earlier_results, write_report


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="bench")
    parser.add_argument("--size", choices=["quick", "full"], default="full")
    parser.add_argument("--only", nargs="*", default=None, help="scenario module names")
    parser.add_argument("--out", type=Path, default=Path("bench/results"))
    args = parser.parse_args(argv)
    names = sorted(m.name for m in pkgutil.iter_modules(scenarios.__path__))
    if args.only:
        names = [n for n in names if n in args.only]
    results: list[Result] = []
    failed = False
    for name in names:
        print(f"== {name} ({args.size})", flush=True)
        module = importlib.import_module(f"bench.scenarios.{name}")
        try:
            got = module.run(size=args.size)
        except Exception:
            traceback.print_exc()
            failed = True
            continue
        for r in got:
            mark = "ok" if r.ok else "MISSED"
            verdict = "" if r.ok is None else f" (target {r.target:g}: {mark})"
            print(f"   {r.metric}: {r.value:,.6g} {r.unit}{verdict}")
        results.extend(got)
    if args.only:  # a partial run keeps the other scenarios' last figures
        results = earlier_results(args.out, except_scenarios=names) + results
    json_path, md_path = write_report(results, out_dir=args.out, size=args.size)
    print(f"wrote {json_path} and {md_path}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
