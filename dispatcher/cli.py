"""``quanpai``: the command line, composition root of every process.

Subcommand modules are imported only when their command runs, so the store printer agent
(``pip install quanpai[printer]``) never imports pandas, scikit-learn or ClickHouse.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

from infra.cli_support import EXIT_FAILED, EXIT_USAGE, UsageError, environment_error
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
}

# Long-running processes keep metrics (summed over their child processes) and serve /metrics.
SERVES_METRICS = ("worker", "serve", "loader", "callbacks", "scheduler")


def _parser(argv: Sequence[str]) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="quanpai", description="Quanpai coupon campaign engine")
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
    try:
        parser = _parser(args_list)
    except ModuleNotFoundError as exc:
        print(f"quanpai: this command needs the package {exc.name!r}: "
              "pip install 'quanpai[all]'", file=sys.stderr)
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
        return int(args.func(args, settings))
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
