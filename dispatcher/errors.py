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
