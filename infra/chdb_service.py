"""Embedded chDB shared like a server: one process owns it, the others ask it over a socket.

chDB keeps its data directory locked by the process that opened it, so a second process (``quanpai
roi`` while ``quanpai loader`` runs) cannot open it. ``open_clickhouse`` resolves this: when no
ClickHouse server is configured, the first process to open ``var/chdb`` owns it and answers
queries from the others over HTTP on a Unix socket beside it (``var/chdb.sock``, reachable
only by users who may write ``var/``); every other process finds the socket and becomes a
client. When the owner exits, the next caller opens chDB itself. A caller that loses a race to
open it waits for the winner's socket instead of failing.

The protocol is three POSTs with JSON bodies, ``/query``, ``/execute`` and ``/insert``, and
``GET /version``; errors come back as status 400 with ``{"error": message}``.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import socket
import socketserver
import threading
import time
from collections.abc import Sequence
from datetime import datetime
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any

from infra.clickhouse import ChdbClient, ClickHouse, make_clickhouse
from infra.errors import ClickHouseError
from infra.settings import Settings


def socket_path(settings: Settings) -> Path:
    return settings.var_dir / "chdb.sock"


class _UnixConnection(http.client.HTTPConnection):
    def __init__(self, path: Path, timeout: float) -> None:
        super().__init__("localhost", timeout=timeout)
        self._path = str(path)

    def connect(self) -> None:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(self.timeout)
        sock.connect(self._path)
        self.sock = sock


def _plain(value: Any) -> Any:
    return int(value.timestamp()) if isinstance(value, datetime) else value


class SocketClient:
    """A ``ClickHouse`` that sends its statements to the process owning chDB."""

    kind = "chdb"

    def __init__(self, *, path: Path, timeout: float = 600.0) -> None:
        self._path = path
        self._timeout = timeout

    def _call(self, method: str, url: str, body: Any = None) -> Any:
        conn = _UnixConnection(self._path, self._timeout)
        try:
            payload = None if body is None else json.dumps(body, ensure_ascii=False).encode()
            conn.request(method, url, body=payload,
                         headers={"Content-Type": "application/json"})
            reply = conn.getresponse()
            data = json.loads(reply.read() or b"null")
        except (OSError, http.client.HTTPException, ValueError) as exc:
            raise ClickHouseError(f"the process owning chDB ({self._path}) did not answer: "
                                  f"{exc}") from exc
        finally:
            conn.close()
        if reply.status != 200:
            raise ClickHouseError(str(data.get("error") if isinstance(data, dict) else data))
        return data

    def alive(self) -> bool:
        try:
            self._call("GET", "/version")
        except ClickHouseError:
            return False
        return True

    def execute(self, sql: str) -> None:
        self._call("POST", "/execute", {"sql": sql})

    def query(self, sql: str) -> list[tuple[Any, ...]]:
        return [tuple(row) for row in self._call("POST", "/query", {"sql": sql})]

    def insert(self, table: str, columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
        if rows:
            self._call("POST", "/insert", {"table": table, "columns": list(columns),
                                           "rows": [[_plain(v) for v in r] for r in rows]})

    def server_version(self) -> tuple[int, ...]:
        return tuple(self._call("GET", "/version"))

    def close(self) -> None:
        return None


class _Server(socketserver.ThreadingMixIn, socketserver.UnixStreamServer):
    daemon_threads = True
    ch: ClickHouse


class _Handler(BaseHTTPRequestHandler):
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:
        return None  # a Unix socket has no client address to log, and queries are not news

    def _reply(self, status: int, data: Any) -> None:
        body = json.dumps(data, ensure_ascii=False, default=str).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self) -> None:
        if self.path != "/version":
            self._reply(404, {"error": f"no {self.path}"})
            return
        self._reply(200, list(self.server.ch.server_version()))

    def do_POST(self) -> None:
        ch = self.server.ch
        try:
            body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))))
            if self.path == "/query":
                self._reply(200, [list(r) for r in ch.query(str(body["sql"]))])
            elif self.path == "/execute":
                ch.execute(str(body["sql"]))
                self._reply(200, None)
            elif self.path == "/insert":
                ch.insert(str(body["table"]), body["columns"], body["rows"])
                self._reply(200, None)
            else:
                self._reply(404, {"error": f"no {self.path}"})
        except (ClickHouseError, KeyError, ValueError, TypeError) as exc:
            self._reply(400, {"error": str(exc)})


class ChdbOwner:
    """The chDB of this process, served to the others on ``path`` until ``close``."""

    kind = "chdb"

    def __init__(self, *, client: ChdbClient, path: Path) -> None:
        self._client = client
        self._path = path
        with contextlib.suppress(FileNotFoundError):
            path.unlink()  # a dead owner's socket: we hold the chDB lock, so it is stale
        self._server = _Server(str(path), _Handler)
        self._server.ch = client
        self._thread = threading.Thread(target=self._server.serve_forever,
                                        name="chdb-service", daemon=True)
        self._thread.start()

    def execute(self, sql: str) -> None:
        self._client.execute(sql)

    def query(self, sql: str) -> list[tuple[Any, ...]]:
        return self._client.query(sql)

    def insert(self, table: str, columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
        self._client.insert(table, columns, rows)

    def server_version(self) -> tuple[int, ...]:
        return self._client.server_version()

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        with contextlib.suppress(FileNotFoundError):
            self._path.unlink()
        self._client.close()


def open_clickhouse(settings: Settings, *, wait: float = 15.0) -> ClickHouse:
    """The configured ClickHouse: the server of ``CLICKHOUSE_URL``; else the chDB under
    ``var/`` through the process that owns it, or owned (and served) by this process."""
    if settings.clickhouse_url:
        return make_clickhouse(settings)
    path = socket_path(settings)
    deadline = time.monotonic() + wait
    while True:
        if path.exists():
            client = SocketClient(path=path)
            if client.alive():
                return client
        try:
            return ChdbOwner(client=ChdbClient(path=settings.chdb_path), path=path)
        except Exception as exc:  # chDB's lock error is a plain RuntimeError
            if time.monotonic() > deadline:
                raise ClickHouseError(
                    f"chDB under {settings.chdb_path} is held by a process that does not "
                    f"answer on {path} ({exc}); stop it or wait for it to finish") from exc
            time.sleep(0.2)
