"""A network receipt printer for the tests: raw TCP (like port 9100) on a free loopback port,
one client at a time, recording every byte and answering DLE EOT status queries.

It can be switched off (the port refuses connections, as an unplugged printer does), run out
of paper, and call back after the n-th cut (the tests use that to kill the agent mid-job)."""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections.abc import Callable

from infra.ports import free_port

DLE_EOT = b"\x10\x04"
CUT = b"\x1dV"


class PrinterEmulator:
    def __init__(self, port: int = 0) -> None:
        self.port = port or free_port()
        self.received = bytearray()
        self.connections = 0
        self.paper_out = False
        self.mute = False  # a printer that never answers DLE EOT
        self.on_cut: Callable[[int], None] | None = None
        self.cuts = 0
        self._lock = threading.Lock()
        self._listener: socket.socket | None = None
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()

    @property
    def url(self) -> str:
        return f"tcp://127.0.0.1:{self.port}"

    def power_on(self) -> None:
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", self.port))
        listener.listen(1)
        listener.settimeout(0.2)
        self._listener = listener
        self._stop.clear()
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def power_off(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(10)
        if self._listener is not None:
            self._listener.close()
            self._listener = None

    def snapshot(self) -> bytes:
        with self._lock:
            return bytes(self.received)

    def wait_for(self, predicate: Callable[[bytes], bool], timeout: float = 60.0) -> bytes:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            data = self.snapshot()
            if predicate(data):
                return data
            time.sleep(0.05)
        raise AssertionError(f"printer did not receive what was expected in {timeout} s")

    def _status(self, n: int) -> bytes:
        value = 0x12
        if n == 1 and self.paper_out:
            value |= 0x08  # offline while the paper is out
        if n == 2 and self.paper_out:
            value |= 0x20
        if n == 4 and self.paper_out:
            value |= 0x60
        return bytes([value])

    def _serve(self) -> None:
        assert self._listener is not None
        while not self._stop.is_set():
            try:
                conn, _ = self._listener.accept()
            except (TimeoutError, OSError):
                continue
            self.connections += 1
            with contextlib.closing(conn):
                self._talk(conn)

    def _talk(self, conn: socket.socket) -> None:
        conn.settimeout(0.2)
        tail = b""
        while not self._stop.is_set():
            try:
                chunk = conn.recv(65536)
            except TimeoutError:
                continue
            except OSError:
                return
            if not chunk:
                return
            with self._lock:
                self.received += chunk
            data = tail + chunk
            cuts = data.count(CUT) - tail.count(CUT)
            for _ in range(cuts):
                self.cuts += 1
                if self.on_cut is not None:
                    self.on_cut(self.cuts)
            start = max(0, len(tail) - 2)
            while (i := data.find(DLE_EOT, start)) != -1 and i + 2 < len(data):
                if not self.mute:
                    with contextlib.suppress(OSError):
                        conn.sendall(self._status(data[i + 2]))
                start = i + 3
            tail = data[-2:]
