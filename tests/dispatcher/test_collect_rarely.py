"""The worker collects garbage rarely and leaves start-up's objects alone."""

from __future__ import annotations

import gc
from collections.abc import Iterator

import pytest

from dispatcher.cli import COLLECT_RARELY, GC_THRESHOLDS, collect_rarely


@pytest.fixture
def restore_gc() -> Iterator[None]:
    thresholds = gc.get_threshold()
    yield
    gc.unfreeze()
    gc.set_threshold(*thresholds)


@pytest.mark.usefixtures("restore_gc")
def test_collect_rarely_freezes_start_up_and_raises_the_thresholds() -> None:
    built_at_start = [object() for _ in range(10)]
    frozen_before = gc.get_freeze_count()
    collect_rarely()
    assert gc.get_threshold() == GC_THRESHOLDS
    assert gc.get_freeze_count() > frozen_before  # start-up objects out of the collector's way
    assert built_at_start
    # cycles made later are still collected
    cycle: list[object] = []
    cycle.append(cycle)
    del cycle
    assert gc.collect() >= 1


def test_the_worker_collects_rarely() -> None:
    assert "worker" in COLLECT_RARELY
