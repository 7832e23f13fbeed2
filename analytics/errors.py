"""Errors of the analytics package.

``QueryError`` and ``UnknownCampaign`` are the caller's to fix (a CLI exits 2, the API answers
4xx); ``infra.errors.ClickHouseError`` means ClickHouse failed or is unreachable (retryable: the
events wait in Redis).
"""

from __future__ import annotations

from infra.errors import InvalidInput, NotFound


class QueryError(InvalidInput):
    """A named query's parameter is missing, unknown or of the wrong type."""

    def __init__(self, message: str) -> None:
        field, _, text = message.partition(": ")
        super().__init__(field.removeprefix("parameter ") if text else "query", text or message)


class UnknownCampaign(NotFound):
    """The campaign has no events in ClickHouse for this merchant."""

    def __init__(self, campaign_id: str) -> None:
        super().__init__(f"campaign {campaign_id!r} has no events for this merchant "
                         "(wrong id, or its events are not loaded yet: quanpai loader status)")
        self.campaign_id = campaign_id
