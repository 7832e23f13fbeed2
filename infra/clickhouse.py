"""One ClickHouse interface over two engines: embedded chDB, and a server via clickhouse-driver.

``make_clickhouse(settings)`` picks: ``CLICKHOUSE_URL=clickhouse://host:9000/db`` means a server;
unset means chDB under ``var/chdb``. Both accept the same SQL as long as it keeps to what
ClickHouse 18.16 (Debian's server) understands; ``server_version()`` lets callers detect more.
Query results are lists of tuples of plain Python values; return numbers and strings (not dates)
from queries whose results must compare equal across the two engines.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import urlsplit

from infra.errors import ClickHouseError, ClickHouseUnavailable
from infra.settings import Settings


class ClickHouse(Protocol):
    """What analytics needs from ClickHouse."""

    kind: str

    def execute(self, sql: str) -> None: ...

    def query(self, sql: str) -> list[tuple[Any, ...]]: ...

    def insert(self, table: str, columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> None: ...

    def server_version(self) -> tuple[int, ...]: ...

    def close(self) -> None: ...


def _first_words(sql: str) -> str:
    return " ".join(sql.split()[:4])


def _parse_version(text: str) -> tuple[int, ...]:
    return tuple(int(part) for part in text.strip().strip('"').split(".") if part.isdigit())


def _json_value(value: Any) -> Any:
    if isinstance(value, datetime):
        return int(value.timestamp())
    return value


class ChdbClient:
    """Embedded ClickHouse (chDB) with its data under ``path``; one per process."""

    kind = "chdb"

    def __init__(self, *, path: Path) -> None:
        from chdb import session

        path.mkdir(parents=True, exist_ok=True)
        self._session = session.Session(str(path))
        # chDB sessions are not safe to share between threads without a lock.
        self._lock = threading.Lock()

    def _run(self, sql: str, fmt: str = "CSV") -> Any:
        try:
            with self._lock:
                return self._session.query(sql, fmt)
        except Exception as exc:  # chDB raises its own RuntimeError subclasses
            raise ClickHouseError(f"{_first_words(sql)}: {exc}") from exc

    def execute(self, sql: str) -> None:
        self._run(sql)

    def query(self, sql: str) -> list[tuple[Any, ...]]:
        result = self._run(
            sql + "\nSETTINGS output_format_json_quote_64bit_integers=0", "JSONCompact"
        )
        raw = result.bytes()
        if not raw:
            return []
        return [tuple(row) for row in json.loads(raw)["data"]]

    def insert(self, table: str, columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
        if not rows:
            return
        # One JSON array per row (JSONCompactEachRow): half the bytes and encoding of objects.
        lines = "\n".join(
            json.dumps([_json_value(v) for v in row], ensure_ascii=False) for row in rows
        )
        self._run(f"INSERT INTO {table} ({', '.join(columns)}) FORMAT JSONCompactEachRow\n{lines}")

    def server_version(self) -> tuple[int, ...]:
        return _parse_version(self._run("SELECT version()").bytes().decode())

    def close(self) -> None:
        with self._lock:
            self._session.close()


class DriverClient:
    """A ClickHouse server over the native protocol (clickhouse-driver)."""

    kind = "server"

    def __init__(self, *, url: str) -> None:
        from clickhouse_driver import Client

        parts = urlsplit(url)
        database = parts.path.lstrip("/") or "default"
        self._where = f"{parts.hostname or '127.0.0.1'}:{parts.port or 9000}"
        # the driver logs every failed connect with a traceback before raising; the error
        # raised here says it in one line
        logging.getLogger("clickhouse_driver.connection").setLevel(logging.ERROR)
        self._client = Client(
            host=parts.hostname or "127.0.0.1",
            port=parts.port or 9000,
            user=parts.username or "default",
            password=parts.password or "",
            database=database,
        )
        self._lock = threading.Lock()

    def execute(self, sql: str) -> None:
        self._call(sql)

    def _call(self, sql: str, params: Any = None) -> Any:
        from clickhouse_driver import errors

        try:
            with self._lock:
                return self._client.execute(sql, params)
        except (errors.NetworkError, errors.SocketTimeoutError, OSError, EOFError) as exc:
            # the server, not the statement: one line, as for any unreachable service
            raise ClickHouseUnavailable(
                f"ClickHouse at {self._where} is unreachable ({exc}): check CLICKHOUSE_URL, or "
                "unset it to use the embedded chDB") from exc
        except errors.Error as exc:
            raise ClickHouseError(f"{_first_words(sql)}: {exc}") from exc

    def query(self, sql: str) -> list[tuple[Any, ...]]:
        return [tuple(row) for row in self._call(sql)]

    def insert(self, table: str, columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
        if rows:
            self._call(f"INSERT INTO {table} ({', '.join(columns)}) VALUES", list(rows))

    def server_version(self) -> tuple[int, ...]:
        return _parse_version(str(self._call("SELECT version()")[0][0]))

    def close(self) -> None:
        self._client.disconnect()


def make_clickhouse(settings: Settings) -> ClickHouse:
    """The ClickHouse of these settings: a server when ``CLICKHOUSE_URL`` is set, else chDB
    opened in this process. Commands use ``infra.chdb_service.open_clickhouse`` instead: chDB
    is locked by the process that opened it, and that one shares it with the others."""
    if settings.clickhouse_url:
        return DriverClient(url=settings.clickhouse_url)
    return ChdbClient(path=settings.chdb_path)
