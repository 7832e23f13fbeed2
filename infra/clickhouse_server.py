"""A private ``clickhouse-server`` (Debian's package) on free ports in a directory of its own.

Used by the tests and by anyone who wants to try the server path without installing a service.
Debian's package is ClickHouse 18.16; the schema and ROI queries keep to SQL it accepts.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

from infra.errors import ServiceError
from infra.ports import free_port, wait_port

_CANDIDATES = ("clickhouse-server", "/usr/sbin/clickhouse-server", "/usr/bin/clickhouse-server")

_CONFIG = """<?xml version="1.0"?>
<yandex>
    <logger><level>warning</level><log>{dir}/server.log</log>
        <errorlog>{dir}/server.err.log</errorlog><size>100M</size><count>1</count></logger>
    <listen_host>127.0.0.1</listen_host>
    <tcp_port>{tcp_port}</tcp_port>
    <http_port>{http_port}</http_port>
    <max_connections>64</max_connections>
    <max_concurrent_queries>32</max_concurrent_queries>
    <uncompressed_cache_size>67108864</uncompressed_cache_size>
    <mark_cache_size>67108864</mark_cache_size>
    <path>{dir}/data/</path>
    <tmp_path>{dir}/tmp/</tmp_path>
    <user_files_path>{dir}/user_files/</user_files_path>
    <format_schema_path>{dir}/format_schemas/</format_schema_path>
    <users_config>{dir}/users.xml</users_config>
    <default_profile>default</default_profile>
    <default_database>default</default_database>
    <timezone>UTC</timezone>
    <mlock_executable>false</mlock_executable>
</yandex>
"""

_USERS = """<?xml version="1.0"?>
<yandex>
    <profiles><default><max_memory_usage>4000000000</max_memory_usage></default></profiles>
    <users><default><password></password><networks><ip>127.0.0.1</ip><ip>::1</ip></networks>
        <profile>default</profile><quota>default</quota></default></users>
    <quotas><default><interval><duration>3600</duration><queries>0</queries><errors>0</errors>
        <result_rows>0</result_rows><read_rows>0</read_rows><execution_time>0</execution_time>
    </interval></default></quotas>
</yandex>
"""


def find_clickhouse_server() -> str:
    """Path of the clickhouse-server binary, or ``ServiceError`` saying how to install it."""
    for candidate in _CANDIDATES:
        path = shutil.which(candidate) or (candidate if os.access(candidate, os.X_OK) else None)
        if path:
            return path
    raise ServiceError(
        "clickhouse-server not found: install Debian's package "
        "(apt-get install clickhouse-server) or set CLICKHOUSE_URL to a running server"
    )


@dataclass
class ClickHouseServer:
    """One clickhouse-server process; ``start()`` returns once it accepts native connections."""

    directory: Path
    tcp_port: int = 0
    http_port: int = 0
    process: subprocess.Popen[bytes] | None = field(default=None, repr=False)

    @property
    def url(self) -> str:
        return f"clickhouse://127.0.0.1:{self.tcp_port}/default"

    def start(self, *, timeout: float = 60.0) -> None:
        binary = find_clickhouse_server()
        self.directory.mkdir(parents=True, exist_ok=True)
        self.tcp_port = self.tcp_port or free_port()
        self.http_port = self.http_port or free_port()
        for sub in ("data", "tmp", "user_files", "format_schemas"):
            (self.directory / sub).mkdir(exist_ok=True)
        config = self.directory / "config.xml"
        config.write_text(
            _CONFIG.format(dir=self.directory, tcp_port=self.tcp_port, http_port=self.http_port)
        )
        (self.directory / "users.xml").write_text(_USERS)
        log = (self.directory / "stdout.log").open("wb")
        self.process = subprocess.Popen(
            [binary, f"--config-file={config}"],
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=self.directory,
            start_new_session=True,
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                tail = (self.directory / "stdout.log").read_text(errors="replace")[-800:]
                raise ServiceError(f"clickhouse-server exited at start: {tail.strip()}")
            if wait_port("127.0.0.1", self.tcp_port, timeout=0.5):
                return
        self.stop()
        raise ServiceError(f"clickhouse-server did not listen on {self.tcp_port} in {timeout}s")

    def stop(self) -> None:
        if self.process is None:
            return
        self.process.terminate()
        try:
            self.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self.process = None
