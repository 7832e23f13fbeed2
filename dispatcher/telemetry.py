"""What a worker adds to Dramatiq so operators can follow it: the campaign and batch of the
message in hand on every log line (and, through ``infra.metrics``, its counters).

A middleware rather than code in the actor: it sees every message of every actor, including the
ones that fail before the actor's first line, and leaves the actor's logic alone.
"""

from __future__ import annotations

import contextvars
import threading
import time
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Any

import dramatiq
import redis

from analytics.events import Event, EventSink
from analytics.stream import RedisStreamSink, StreamReader
from catalog.issuance import IssuedCoupon
from channels.base import Channel, Message, SendResult
from infra import logs
from infra.metrics import metrics, multiprocess_directory


class BatchLogContext(dramatiq.Middleware):
    """Sets ``campaign_id`` and ``batch_id`` for the log lines written while a batch message
    (``actor(campaign_id, batch_no, ...)``) is processed, and clears them afterwards."""

    def __init__(self) -> None:
        self._local = threading.local()

    def before_process_message(self, broker: dramatiq.Broker, message: Any) -> None:
        args = message.args
        tokens: list[tuple[contextvars.ContextVar[str], contextvars.Token[str]]] = []
        if len(args) >= 2 and isinstance(args[0], str):
            tokens.append((logs.campaign_id, logs.campaign_id.set(args[0])))
            tokens.append((logs.batch_id, logs.batch_id.set(f"{args[0]}:{args[1]}")))
        self._local.tokens = tokens

    def after_process_message(self, broker: dramatiq.Broker, message: Any, *,
                              result: Any = None, exception: BaseException | None = None) -> None:
        for var, token in reversed(getattr(self._local, "tokens", [])):
            var.reset(token)
        self._local.tokens = []

    after_skip_message = after_process_message


def prometheus_middleware() -> dramatiq.Middleware | None:
    """Dramatiq's own Prometheus middleware (messages processed, retries, failures, rejects,
    durations per actor), writing where this process's metrics live; None when this process
    keeps no multiprocess metrics (then Dramatiq's middleware, which knows no other mode, would
    write to a shared temporary directory)."""
    directory = multiprocess_directory()
    if directory is None:
        return None
    from dramatiq.middleware import prometheus

    prometheus.DB_PATH = str(directory)  # read from the environment when first imported
    return prometheus.Prometheus()


class MeteredChannel:
    """A channel that records each send call's latency and each message's status and provider
    code (counted per call, not per message, to keep the hot path cheap)."""

    def __init__(self, inner: Channel, *, label: str) -> None:
        self._inner = inner
        self._label = label  # the campaign's channel name (wechat_mass, not wechat)
        self.name = inner.name
        self.max_batch = inner.max_batch
        # What ``LimitedChannel.inner`` is: the provider client, for callers that unwrap a
        # channel to reach its other methods (the worker's open-call resolvers).
        self.inner: Any = getattr(inner, "inner", inner)

    async def send(self, messages: Sequence[Message]) -> list[SendResult]:
        m = metrics()
        started = time.perf_counter()
        try:
            results = await self._inner.send(messages)
        finally:
            m.provider_seconds.labels(channel=self._label).observe(time.perf_counter() - started)
        for (status, code), n in Counter((r.status, r.code) for r in results).items():
            m.provider_results.labels(channel=self._label, status=status, code=code).inc(n)
        return results


def metered(channels: Mapping[str, Channel]) -> dict[str, Channel]:
    """Every channel of a worker wrapped in ``MeteredChannel``."""
    return {name: MeteredChannel(channel, label=name) for name, channel in channels.items()}


class CountingSink:
    """An event sink that counts what it emits by event type and channel. For emitters that
    emit each event once (the callback receiver claims each receipt before emitting)."""

    def __init__(self, inner: EventSink, *, rename: Mapping[str, str] | None = None) -> None:
        self._inner = inner
        self._rename = dict(rename or {})

    def emit(self, events: Sequence[Event]) -> None:
        self._inner.emit(events)
        count_events(events, rename=self._rename)


def count_events(events: Iterable[Event], *, rename: Mapping[str, str] | None = None) -> None:
    """Add ``events`` to the campaign counters (by event type, renamed where ``rename`` says,
    and channel)."""
    counter = metrics().campaign
    for (kind, channel), n in Counter((e.event_type, e.channel) for e in events).items():
        kind = rename.get(kind, kind) if rename else kind
        counter.labels(event=kind, channel=channel).inc(n)


class StreamBacklog:
    """Read at each scrape: how many events wait in the stream and how old the oldest is (the
    loader deletes what it has stored, so whatever is in the stream is not loaded yet)."""

    def __init__(self, *, reader: StreamReader) -> None:
        self._reader = reader

    def collect(self) -> Iterator[Any]:
        from prometheus_client.core import GaugeMetricFamily

        try:
            backlog = self._reader.backlog()
        except redis.RedisError:
            return  # no value rather than a wrong one; the loader's own logs say why
        length = GaugeMetricFamily("quanpai_loader_stream_length", "Entries in the event stream")
        length.add_metric([], float(backlog.entries))
        age = GaugeMetricFamily("quanpai_loader_oldest_pending_seconds",
                                "Age of the oldest event not yet loaded")
        oldest = backlog.oldest_ms
        age.add_metric([], max(0.0, time.time() - oldest / 1000) if oldest else 0.0)
        yield length
        yield age


class CountingStreamSink(RedisStreamSink):
    """The worker's event sink: counts the outcome events it queues on a pipeline (the batch
    ledger settles each member's outcome once, with its event, through ``emit_in``)."""

    def emit_in(self, pipe: Any, events: Sequence[Event]) -> None:
        super().emit_in(pipe, events)
        count_events(events)


def count_issued(coupons: Iterable[IssuedCoupon]) -> None:
    """Coupons issued by this call; ``existing`` ones (a redelivered batch) were counted when
    they were new."""
    n = sum(1 for c in coupons if c.code and c.status != "existing")
    if n:
        metrics().campaign.labels(event="issued", channel="").inc(n)
