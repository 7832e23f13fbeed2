"""Prometheus metrics of every Quanpai process, and the ``/metrics`` listener that serves them.

Every process keeps its metrics in prometheus-client's *multiprocess* mode: values live in
small memory-mapped files under ``var_dir/metrics/<command>-<pid>``, so the children of
``quanpai worker --processes N`` (and Dramatiq's own Prometheus middleware, which only works in
that mode) write to one directory and the parent serves their sum on one port. The directory is
handed to children through the environment, which is how prometheus-client finds it.

Code records through ``metrics()`` (built on first use, so importing this module costs nothing):
``metrics().campaign.labels(event="sent", channel="sms").inc()``. Processes that never call
``start_process_metrics`` (tests, one-off commands) still count, in memory, and serve nothing.
"""

from __future__ import annotations

import atexit
import os
import shutil
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from infra.errors import ServiceError

_DIR_ENV = "PROMETHEUS_MULTIPROC_DIR"
_OWNER_ENV = "QUANPAI_METRICS_OWNER"  # pid of the process that serves this directory

LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)


@dataclass(frozen=True)
class Metrics:
    """Every metric Quanpai records. Labels are low-cardinality on purpose (no member, coupon
    or campaign ids): a long-running process would otherwise keep one series per campaign."""

    campaign: Any  # Counter{event, channel}: issued, sent, delivered, failed, in_doubt, held_out
    provider_seconds: Any  # Histogram{channel}: one provider send call (a batch)
    provider_results: Any  # Counter{channel, status, code}: one per message
    ratelimit_wait_seconds: Any  # Histogram{limiter}
    quota_remaining: Any  # Gauge{channel}: what today's quota has left
    http_requests: Any  # Counter{route, method, status}
    http_seconds: Any  # Histogram{route, method}
    loader_rows: Any  # Counter: rows written to ClickHouse (rate() gives rows/s)
    scheduler_last_run: Any  # Gauge{definition}: unix time
    scheduler_next_run: Any  # Gauge{definition}: unix time
    scheduler_lease: Any  # Gauge{holder}: 1 while ``holder`` holds the scheduler lease


_BUILT: list[Metrics] = []
_BUILDING = threading.Lock()


def metrics() -> Metrics:
    """The process's metrics, created on first use (after ``start_process_metrics`` chose the
    storage). Thread-safe: the worker's actor threads may all ask at once, and a second set
    would collide with the first in the registry."""
    if not _BUILT:
        with _BUILDING:
            if not _BUILT:
                _BUILT.append(_build())
    return _BUILT[0]


def _build() -> Metrics:
    from prometheus_client import Counter, Gauge, Histogram

    def gauge(name: str, doc: str, labels: tuple[str, ...] = ()) -> Gauge:
        # Over several processes a gauge reads as the value set last, by whichever process.
        return Gauge(name, doc, labels, multiprocess_mode="mostrecent")

    return Metrics(
        campaign=Counter("quanpai_campaign_members", "Members by campaign event and channel",
                         ["event", "channel"]),
        provider_seconds=Histogram("quanpai_provider_call_seconds",
                                   "Time of one provider send call (a batch of messages)",
                                   ["channel"], buckets=LATENCY_BUCKETS),
        provider_results=Counter("quanpai_provider_results",
                                 "Provider results per message: status and provider code",
                                 ["channel", "status", "code"]),
        ratelimit_wait_seconds=Histogram("quanpai_ratelimit_wait_seconds",
                                         "Time spent waiting for a rate limiter",
                                         ["limiter"], buckets=LATENCY_BUCKETS),
        quota_remaining=gauge("quanpai_provider_quota_remaining",
                              "Messages today's provider quota has left", ("channel",)),
        http_requests=Counter("quanpai_http_requests", "HTTP API requests",
                              ["route", "method", "status"]),
        http_seconds=Histogram("quanpai_http_request_seconds", "HTTP API request latency",
                               ["route", "method"], buckets=LATENCY_BUCKETS),
        loader_rows=Counter("quanpai_loader_rows", "Event rows written to ClickHouse"),
        scheduler_last_run=gauge("quanpai_scheduler_last_run_timestamp_seconds",
                                 "When a schedule definition last ran", ("definition",)),
        scheduler_next_run=gauge("quanpai_scheduler_next_run_timestamp_seconds",
                                 "When a schedule definition runs next", ("definition",)),
        scheduler_lease=gauge("quanpai_scheduler_lease_held",
                              "1 while this holder holds the scheduler lease", ("holder",)),
    )


# Small helpers for the packages that record, so call sites stay one line.

def record_schedule(definition: str, *, last_run: float | None = None,
                    next_run: float | None = None) -> None:
    """A schedule definition's last and next run (unix seconds)."""
    m = metrics()
    if last_run is not None:
        m.scheduler_last_run.labels(definition=definition).set(last_run)
    if next_run is not None:
        m.scheduler_next_run.labels(definition=definition).set(next_run)


def record_lease(holder: str, *, held: bool) -> None:
    """Whether ``holder`` (host:pid) holds the scheduler lease now."""
    metrics().scheduler_lease.labels(holder=holder).set(1 if held else 0)


def multiprocess_directory() -> Path | None:
    """Where this process's metrics live, when ``start_process_metrics`` chose a directory."""
    value = os.environ.get(_DIR_ENV)
    return Path(value) if value else None


def start_process_metrics(*, var_dir: Path, command: str, host: str, port: int) -> int | None:
    """Choose where this process keeps its metrics and, when ``port`` is set and this process
    is not the child of one that serves them already, serve ``/metrics`` on ``host:port``.
    Returns the port served, or None."""
    inherited = multiprocess_directory()
    owner = os.environ.get(_OWNER_ENV)
    if inherited is None or owner is None:
        directory = var_dir.resolve() / "metrics" / f"{command}-{os.getpid()}"
        _remove_dead_directories(directory.parent)
        shutil.rmtree(directory, ignore_errors=True)
        directory.mkdir(parents=True)
        os.environ[_DIR_ENV] = str(directory)
        os.environ[_OWNER_ENV] = str(os.getpid())
        atexit.register(shutil.rmtree, directory, True)
        _use_multiprocess_values()
        serves = True
    else:
        _use_multiprocess_values()
        atexit.register(_mark_dead, inherited)
        serves = False
    if not port or not serves:
        return None
    from prometheus_client import start_http_server

    try:
        server, _thread = start_http_server(port, addr=host, registry=exposition_registry())
    except OSError as exc:
        raise ServiceError(f"cannot serve /metrics on {host}:{port}: {exc}; choose another "
                           "port with --metrics-port or QUANPAI_METRICS_PORT") from None
    return int(server.server_address[1])


def _use_multiprocess_values() -> None:
    """Metrics created from now on write to the multiprocess directory. prometheus-client picks
    its value class when first imported; a process may have imported it earlier."""
    from prometheus_client import values

    values.ValueClass = values.MultiProcessValue()


def _mark_dead(directory: Path) -> None:
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(os.getpid(), str(directory))


def _remove_dead_directories(parent: Path) -> None:
    """Directories left by processes that died without cleaning up (SIGKILL)."""
    if not parent.is_dir():
        return
    for child in parent.iterdir():
        pid = child.name.rsplit("-", 1)[-1]
        if pid.isdigit() and not Path(f"/proc/{pid}").exists():
            shutil.rmtree(child, ignore_errors=True)


def add_collector(collector: Any) -> None:
    """Serve ``collector`` (an object with ``collect()`` yielding metric families, read at each
    scrape) from this process: for values read from elsewhere, such as a stream's backlog."""
    exposition_registry().register(collector)


_EXPOSED: list[Any] = []


def exposition_registry() -> Any:
    """The registry to expose: the sum over the multiprocess directory when there is one (plus
    this process's own collectors), else this process's metrics."""
    from prometheus_client import REGISTRY, CollectorRegistry, multiprocess

    with _BUILDING:
        if not _EXPOSED:
            directory = multiprocess_directory()
            registry = REGISTRY
            if directory is not None:
                registry = CollectorRegistry()
                multiprocess.MultiProcessCollector(registry, path=str(directory))
            _EXPOSED.append(registry)
        return _EXPOSED[0]


def exposition() -> tuple[bytes, str]:
    """The text a ``/metrics`` route returns, and its content type."""
    from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

    return generate_latest(exposition_registry()), CONTENT_TYPE_LATEST
