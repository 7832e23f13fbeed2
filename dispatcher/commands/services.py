"""``quanpai services up|down|status``."""

from __future__ import annotations

import argparse

from infra import services
from infra.settings import Settings


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = sub.add_parser("services", help="start/stop the local Redis (embedded default)")
    parser.add_argument("action", choices=["up", "down", "status"])
    parser.set_defaults(func=run)


def run(args: argparse.Namespace, settings: Settings) -> int:
    action = {"up": services.up, "down": services.down, "status": services.status}[args.action]
    state = action(settings)
    redis_line = state.redis_url if state.redis_running else "stopped"
    print(f"REDIS_URL={redis_line}")
    print(f"CLICKHOUSE={state.clickhouse}")
    return 0
