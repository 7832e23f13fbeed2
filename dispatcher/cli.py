"""``quanpai``: the command line, composition root of every process.

Subcommand modules are imported only when their command runs, so the store printer agent
(``pip install quanpai[printer]``) never imports pandas, scikit-learn or ClickHouse.
"""

from __future__ import annotations

import argparse
import gc
import importlib
import sys
from collections.abc import Sequence

from infra.cli_support import (
    EXIT_FAILED,
    EXIT_USAGE,
    OneLineParser,
    UsageError,
    environment_error,
)
from infra.errors import InvalidInput, QuanpaiError, ServiceError, SettingsError

# command name -> (module providing register(subparsers), one-line help)
COMMANDS: dict[str, tuple[str, str]] = {
    "services": ("dispatcher.commands.services", "start/stop the local Redis (embedded default)"),
    "data": ("dispatcher.commands.data", "generate synthetic members, stores, transactions"),
    "segment": ("dispatcher.commands.segment", "RFM scores, segment previews and snapshots"),
    "campaign": ("dispatcher.commands.campaign", "run a coupon campaign to a segment"),
    "worker": ("dispatcher.commands.worker", "run a Dramatiq worker (issue + send batches)"),
    "loader": ("dispatcher.commands.loader", "load events from Redis into ClickHouse"),
    "callbacks": ("dispatcher.commands.callbacks", "receive provider delivery callbacks"),
    "roi": ("dispatcher.commands.roi", "campaign ROI: holdout uplift with a 95% interval"),
    "sql": ("dispatcher.commands.sql", "run SQL on the configured ClickHouse (or a prompt)"),
    "analytics": ("dispatcher.commands.analytics", "the analytics schema (migrate)"),
    "demo": ("dispatcher.commands.demo", "the whole flow on the embedded default"),
    "simulate": ("channels.cli", "run the WeChat / SMS / Alipay simulators"),
    "serve": ("dispatcher.commands.serve", "run the HTTP API (catalog, campaigns, ROI)"),
    "doctor": ("dispatcher.commands.doctor", "check every configured dependency"),
    "printer-agent": ("printer_agent.cli", "the store printer agent (receipts, QR codes)"),
    "scheduler": ("dispatcher.commands.scheduler", "run due birthday, wake-up, holiday sends"),
    "schedule": ("dispatcher.commands.schedule", "recurring send definitions: add, list, preview"),
}
# The worker allocates several short-lived objects per member and keeps almost no reference
# cycles. CPython's default, a collection every 700 allocations that now and then walks every
# live object, cost it a sixth of its CPU (100,000-member flow: 90.8 and 86.3 µs a coupon by
# default, 70.7 and 80.3 with these thresholds): it collects rarely, and never rescans what
# start-up built.
COLLECT_RARELY = frozenset({"worker"})
GC_THRESHOLDS = (100_000, 50, 100)


def collect_rarely() -> None:
    """Freeze what start-up built out of the collector's sight and collect rarely."""
    gc.freeze()
    gc.set_threshold(*GC_THRESHOLDS)


# the extra a command needs beyond the base install (default: all), and packages that show
# an extra is installed: a store PC has only quanpai[printer], and every other command says so
EXTRAS: dict[str, str] = {"printer-agent": "printer", "serve": "server", "worker": "server",
                          "simulate": "server", "callbacks": "server", "services": "server",
                          "segment": "segmentation", "data": "segmentation", "roi": "analytics"}
PROBES: dict[str, tuple[str, ...]] = {
    "printer": ("escpos", "aiohttp"), "server": ("redis", "dramatiq", "msgspec"),
    "segmentation": ("pandas", "sklearn"), "analytics": ("chdb", "pandas"),
    "all": ("redis", "dramatiq", "pandas", "sklearn", "chdb")}


def _needs(command: str | None, missing: str | None) -> str:
    extra = EXTRAS.get(command or "", "all")
    return (f"quanpai: {command or 'this command'} needs the package {missing!r}: "
            f"pip install 'quanpai[{extra}]'")


def _missing(command: str) -> str | None:
    """The first package of the command's extra that is not installed (nothing imported)."""
    from importlib.util import find_spec

    extra = EXTRAS.get(command, "all")
    return next((m for m in PROBES.get(extra, PROBES["all"]) if find_spec(m) is None), None)


# Long-running processes keep metrics (summed over their child processes) and serve /metrics.
SERVES_METRICS = ("worker", "serve", "loader", "callbacks", "scheduler")


def _parser(argv: Sequence[str]) -> argparse.ArgumentParser:
    parser = OneLineParser(prog="quanpai", description="Quanpai coupon campaign engine")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    parser.add_argument("--metrics-port", type=int, default=None,
                        help="serve /metrics on this port (default QUANPAI_METRICS_PORT)")
    parser.add_argument("--encoding", default=None,
                        help="encoding of the CSV/YAML files read (default: detect UTF-8, "
                        "UTF-8 with BOM or GBK/GB18030)")
    wanted = next((a for a in argv if a in COMMANDS), None)
    for name, (module, help_text) in COMMANDS.items():
        if name == wanted:
            importlib.import_module(module).register(sub)
        else:
            sub.add_parser(name, help=help_text)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args_list = list(sys.argv[1:] if argv is None else argv)
    wanted = next((a for a in args_list if a in COMMANDS), None)
    if wanted in COMMANDS and (missing := _missing(wanted)):
        print(_needs(wanted, missing), file=sys.stderr)
        return EXIT_USAGE
    try:
        parser = _parser(args_list)
    except ModuleNotFoundError as exc:
        print(_needs(wanted, exc.name), file=sys.stderr)
        return EXIT_USAGE
    args = parser.parse_args(args_list)
    from infra.logs import configure_logging
    from infra.metrics import start_process_metrics
    from infra.settings import load_settings
    from infra.textfiles import use_encoding

    try:
        settings = load_settings()
        use_encoding(args.encoding)
        configure_logging(level=settings.log_level, process_name=args.command)
        if args.command in SERVES_METRICS:
            start_process_metrics(var_dir=settings.var_dir, command=args.command,
                                  host=settings.metrics_host,
                                  port=settings.metrics_port if args.metrics_port is None
                                  else args.metrics_port)
        if args.command in COLLECT_RARELY:
            collect_rarely()
        return int(args.func(args, settings))
    except ModuleNotFoundError as exc:  # a package of another extra, imported when run
        if exc.name is None or exc.name.split(".")[0] in ("infra", "catalog", "analytics",
                                                          "segmentation", "channels",
                                                          "dispatcher", "printer_agent"):
            raise
        print(_needs(wanted, exc.name), file=sys.stderr)
        return EXIT_USAGE
    except (SettingsError, UsageError, ServiceError, InvalidInput) as exc:
        print(f"quanpai: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except QuanpaiError as exc:
        print(f"quanpai: {exc}", file=sys.stderr)
        return EXIT_FAILED
    except KeyboardInterrupt:
        return 130
    except Exception as exc:
        line = environment_error(exc)
        if line is None:
            raise
        print(f"quanpai: {line}", file=sys.stderr)
        return EXIT_USAGE


if __name__ == "__main__":
    sys.exit(main())
