"""The processes of a one-machine deployment, started for the demo and the benchmarks.

``local_stack`` makes sure the private Redis runs (starting it under ``var_dir`` if needed), starts
the channel simulators (or another stand-in for the providers), the callback receiver, the workers
and optionally the events loader as their own processes on free ports, and yields the settings
that point at them. On exit it stops what it started, and only that.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path

from channels.cli import PROVIDERS
from infra import services
from infra.errors import ServiceError
from infra.ports import free_port, wait_port
from infra.settings import Settings

SIMULATORS = ("dispatcher.cli", "simulate")


def _spawn(args: Sequence[str], env: dict[str, str], log: Path, *,
           module: Sequence[str] = ("dispatcher.cli",)) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", *module, *args], env=env,
        stdout=log.open("ab"), stderr=subprocess.STDOUT,
    )


def stop_process(process: subprocess.Popen[bytes]) -> None:
    """SIGTERM, then SIGKILL if the process has not exited within a minute."""
    process.terminate()
    try:
        process.wait(timeout=60)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def env_for(settings: Settings) -> dict[str, str]:
    """The environment that gives a child process these settings' service addresses."""
    env = {**os.environ, "QUANPAI_VAR": str(settings.var_dir),
           "WECHAT_BASE_URL": settings.wechat.base_url, "SMS_BASE_URL": settings.sms.base_url,
           "ALIPAY_BASE_URL": settings.alipay.base_url,
           # "off" rather than "": an empty value in the environment would not override a
           # config file's quiet hours
           "SMS_QUIET_HOURS": settings.sms.quiet_hours or "off"}
    if settings.redis_url:
        env["REDIS_URL"] = settings.redis_url
    return env


@contextmanager
def local_stack(
    settings: Settings, *, threads: int = 8, processes: int = 1, sim_args: tuple[str, ...] = (),
    providers: Sequence[str] = SIMULATORS, loader: bool = False,
) -> Iterator[Settings]:
    """Redis, simulators, the callback receiver and ``processes`` workers (and with ``loader``
    a ``quanpai loader`` process, which then owns the embedded chDB); yields settings pointing
    at them. ``providers`` is the module (and its leading arguments) run with ``python -m`` to
    answer the provider APIs; it gets ``--wechat-port``, ``--sms-port``, ``--alipay-port``,
    ``--callback-url`` and ``sim_args``."""
    logs = settings.var_dir / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    own_redis = not settings.redis_url and not services.status(settings).redis_running
    state = services.up(settings)
    ports = {name: free_port() for name in ("wechat", "sms", "alipay", "callbacks")}
    wired = replace(
        settings,
        redis_url=state.redis_url,
        wechat=replace(settings.wechat, base_url=f"http://127.0.0.1:{ports['wechat']}"),
        sms=replace(settings.sms, base_url=f"http://127.0.0.1:{ports['sms']}"),
        alipay=replace(settings.alipay,
                       base_url=f"http://127.0.0.1:{ports['alipay']}/gateway.do"),
    )
    env = env_for(wired)
    started: list[subprocess.Popen[bytes]] = []
    try:
        started.append(_spawn(["callbacks", "--port", str(ports["callbacks"])], env,
                              logs / "callbacks.log"))
        # The simulators stand for three providers' servers: one process each, so the Alipay
        # gateway's RSA signing (two signatures a member) never holds up WeChat's or SMS's
        # replies on a shared event loop
        groups = [("--only", name) for name in PROVIDERS] if providers == SIMULATORS else [()]
        for group in groups:
            started.append(_spawn(["--wechat-port", str(ports["wechat"]),
                                   "--sms-port", str(ports["sms"]), "--alipay-port",
                                   str(ports["alipay"]), "--callback-url",
                                   f"http://127.0.0.1:{ports['callbacks']}", *group, *sim_args],
                                  env, logs / (f"sim-{group[1]}.log" if group else "sim.log"),
                                  module=providers))
        for _ in range(processes):
            started.append(_spawn(["worker", "--threads", str(threads)], env,
                                  logs / "worker.log"))
        if loader:
            started.append(_spawn(["loader"], env, logs / "loader.log"))
        if not all(wait_port("127.0.0.1", p, timeout=30) for p in ports.values()):
            raise ServiceError(f"simulators or callbacks did not start: see {logs}")
        yield wired
    finally:
        for process in reversed(started):
            stop_process(process)
        if own_redis:
            services.down(settings)
