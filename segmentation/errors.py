"""Errors of the segmentation package.

Every error says what was wrong and what to do. Everything here is permanent (bad input, a rule
that does not parse, a column that is missing) except ``SourceUnavailable``: a ClickHouse source
that could not be reached may work on a retry.
"""

from __future__ import annotations

from infra.errors import QuanpaiError


class SegmentationError(QuanpaiError):
    """Base of the errors of this package; permanent unless said otherwise."""


class InvalidInput(SegmentationError):
    """Transactions or members are not what the computation needs (names the column or option)."""

    def __init__(self, field: str, problem: str) -> None:
        super().__init__(f"{field}: {problem}")
        self.field = field
        self.problem = problem


class InvalidRule(SegmentationError):
    """A segment rule or segment map is invalid; ``field`` is its path, e.g. ``rules[2].tier``."""

    def __init__(self, field: str, problem: str) -> None:
        super().__init__(f"{field}: {problem}")
        self.field = field
        self.problem = problem


class SourceUnavailable(SegmentationError):
    """A data source (ClickHouse) could not be reached or failed; retrying may help."""

    retryable = True
