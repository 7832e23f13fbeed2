"""``quanpai analytics migrate``: bring the ClickHouse schema to its latest version.

Idempotent: a second run applies nothing. Works on the server of ``CLICKHOUSE_URL`` and on the
embedded chDB (through the process that owns it, when one runs).
"""

from __future__ import annotations

import argparse

from analytics.schema import LATEST, migrate
from infra.chdb_service import open_clickhouse
from infra.settings import Settings


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = sub.add_parser("analytics", help="the analytics schema (migrate)")
    actions = parser.add_subparsers(dest="action", required=True)
    actions.add_parser("migrate", help="apply the schema versions this database lacks")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace, settings: Settings) -> int:
    ch = open_clickhouse(settings)
    try:
        applied = migrate(ch)
        version = ".".join(str(p) for p in ch.server_version()[:3])
    finally:
        ch.close()
    for migration in applied:
        print(f"applied {migration.version}: {migration.name}")
    print(f"schema at version {LATEST} on {ch.kind} (ClickHouse {version})")
    return 0
