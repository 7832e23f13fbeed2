"""``quanpai sql``: SQL against whichever ClickHouse is configured (server, or the embedded chDB
through the process that owns it).

    quanpai sql "SELECT count() FROM events"
    quanpai sql --query campaign_counts --param merchant=demo --param campaign=
    quanpai sql --list                      # the named queries and their parameters
    quanpai sql                             # an interactive prompt (end statements with ;)
"""

from __future__ import annotations

import argparse
import csv
import sys
from typing import Any

from analytics.errors import QueryError
from analytics.queries import NAMED, bind, convert, placeholders
from analytics.schema import ensure_schema
from infra.chdb_service import open_clickhouse
from infra.cli_support import UsageError
from infra.clickhouse import ClickHouse
from infra.errors import ClickHouseError
from infra.settings import Settings


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = sub.add_parser("sql", help="run SQL on the configured ClickHouse")
    parser.add_argument("statement", nargs="?", default=None, help="one SQL statement")
    parser.add_argument("--query", default=None, help="a named query (see --list)")
    parser.add_argument("--param", action="append", default=[], metavar="NAME=VALUE",
                        help="a parameter of the named query (repeatable)")
    parser.add_argument("--list", action="store_true", help="list the named queries")
    parser.add_argument("--format", choices=("tsv", "csv"), default="tsv")
    parser.set_defaults(func=run)


def _named(args: argparse.Namespace) -> str:
    query = NAMED.get(args.query)
    if query is None:
        raise UsageError(f"--query: no query named {args.query!r} (quanpai sql --list)")
    kinds = placeholders(query.sql)
    params: dict[str, Any] = {}
    for item in args.param:
        name, sep, text = item.partition("=")
        if not sep or name not in kinds:
            raise UsageError(f"--param {item!r}: expected NAME=VALUE with NAME one of "
                             f"{', '.join(sorted(kinds))}")
        try:
            params[name] = convert(kinds[name], text)
        except ValueError as exc:
            raise UsageError(f"--param {name}: {exc}") from None
    try:
        return bind(query.sql, params)
    except QueryError as exc:
        raise UsageError(f"--param {exc}") from None


def _print(rows: list[tuple[Any, ...]], fmt: str) -> None:
    if fmt == "csv":
        csv.writer(sys.stdout).writerows(rows)
    else:
        for row in rows:
            print("\t".join(str(v) for v in row))


def _is_query(sql: str) -> bool:
    return sql.lstrip().split(None, 1)[0].upper() in ("SELECT", "WITH", "SHOW", "DESCRIBE",
                                                       "DESC", "EXISTS", "EXPLAIN")


def _run_one(ch: ClickHouse, sql: str, fmt: str) -> None:
    if _is_query(sql):
        _print(ch.query(sql), fmt)
    else:
        ch.execute(sql)


def _prompt(ch: ClickHouse, fmt: str) -> int:
    buffer: list[str] = []
    while True:
        try:
            line = input("quanpai sql> " if not buffer else "        ...> ")
        except EOFError:
            print()
            return 0
        if not buffer and line.strip().lower() in ("exit", "quit", r"\q"):
            return 0
        buffer.append(line)
        text = "\n".join(buffer).strip()
        if not text.endswith(";"):
            continue
        buffer = []
        try:
            _run_one(ch, text.rstrip(";"), fmt)
        except ClickHouseError as exc:
            print(f"error: {exc}", file=sys.stderr)


def run(args: argparse.Namespace, settings: Settings) -> int:
    if args.list:
        for query in NAMED.values():
            params = ", ".join(f"{k}:{v}" for k, v in placeholders(query.sql).items())
            print(f"{query.name}({params})\n    {query.description}")
        return 0
    if args.statement and args.query:
        raise UsageError("give a statement or --query, not both")
    sql = _named(args) if args.query else args.statement
    if sql is not None and not sql.strip():
        raise UsageError("the statement is empty")
    ch = open_clickhouse(settings)
    try:
        ensure_schema(ch)
        if sql is None:
            return _prompt(ch, args.format)
        try:
            _run_one(ch, sql.strip().rstrip(";"), args.format)
        except ClickHouseError as exc:
            raise UsageError(str(exc).splitlines()[0][:300]) from None
        return 0
    finally:
        ch.close()
