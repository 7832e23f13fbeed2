"""A cache of what evaluating rules reads, for the console's repeated previews and counts.

An operator edits a condition and asks for a count again and again on the same day: the
transactions file is read once into arrays (kept while the file's size and modification time
stay the same), rule features are kept per (source, as_of, filters), and the members table per
file. Entries are few and large, so the cache holds a handful and drops the oldest.
"""

from __future__ import annotations

import datetime as dt
from collections import OrderedDict
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, TypeVar

from segmentation.aggregates import RuleFeatures, TransactionArrays, array_rule_features
from segmentation.local_dates import day_number
from segmentation.sources import FileTransactions, SegmentSource
from segmentation.windows import TxFilter

T = TypeVar("T")


def file_stamp(path: Path) -> tuple[str, int, int]:
    """Identity of a file's current content: path, size, modification time."""
    stat = path.stat()
    return str(path.resolve()), stat.st_size, stat.st_mtime_ns


class FeatureCache:
    """Arrays, rule features and member frames by key; ``max_entries`` of each kind."""

    def __init__(self, *, max_entries: int = 6) -> None:
        self._max = max_entries
        self._entries: OrderedDict[tuple[Any, ...], Any] = OrderedDict()

    def get(self, key: tuple[Any, ...], make: Callable[[], T]) -> T:
        """The cached value of ``key``, made (and kept) on a miss."""
        if key in self._entries:
            self._entries.move_to_end(key)
            return self._entries[key]  # type: ignore[no-any-return]
        value = make()
        self._entries[key] = value
        while len(self._entries) > self._max * 3:
            self._entries.popitem(last=False)
        return value

    def arrays(self, source: FileTransactions, text: set[str]) -> TransactionArrays:
        """The file's transactions as arrays with (at least) the ``text`` columns encoded."""
        base = ("arrays", file_stamp(source.path), source.columns, source.timezone.key)
        for key, value in self._entries.items():
            if key[:4] == base and text <= key[4]:
                return value  # type: ignore[no-any-return]
        return self.get((*base, frozenset(text)), lambda: source.arrays(text))

    def rule_features(self, source: SegmentSource, *, as_of: dt.date,
                      filters: Sequence[TxFilter]) -> RuleFeatures:
        """``source.rule_features`` through the cache (file arrays are shared across days)."""
        ordered = tuple(sorted(set(filters), key=lambda f: f.key))
        if isinstance(source, FileTransactions):
            text = set().union(*(f.columns_needed() for f in ordered)) if ordered else set()
            chosen = self.arrays(source, text)
            return self.get(("features", file_stamp(source.path), as_of, ordered),
                            lambda: array_rule_features(chosen, ordered,
                                                        as_of_day=day_number(as_of)))
        identity = getattr(source, "cache_key", None)
        if identity is None:  # a source without a stable identity is not cached
            return source.rule_features(as_of=as_of, filters=ordered)
        return self.get(("features", identity, as_of, ordered),
                        lambda: source.rule_features(as_of=as_of, filters=ordered))
