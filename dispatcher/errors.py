"""Errors of the dispatcher package.

``BatchRetryable`` makes Dramatiq retry the batch later (only members not yet sent are sent
again); ``CampaignError`` is permanent: the campaign's definition is wrong, retrying won't help.
"""

from __future__ import annotations

from infra.errors import QuanpaiError


class DispatcherError(QuanpaiError):
    """Base of the dispatcher errors."""


class CampaignError(DispatcherError):
    """A campaign cannot run as defined (unknown campaign, template or channel)."""


class BatchRetryable(DispatcherError):
    """Some members of a batch could not be sent for now (provider busy, rate limited)."""


class DefinitionError(CampaignError):
    """A campaign definition is invalid; ``field`` is the dotted path of the bad field
    (``budget.max_cost_fen``, ``channels[1]``) so the CLI and the API can name it."""

    def __init__(self, field: str, message: str) -> None:
        self.field = field
        self.message = message
        super().__init__(f"{field}: {message}")


class CampaignStateError(CampaignError):
    """The operation does not apply to the campaign's state (resume a completed campaign)."""
