"""Errors of the channels package.

Per-message failures are ``SendResult`` values, not exceptions. These are for a call that cannot
run at all: ``ChannelUnavailable`` is retryable (network, 5xx, timeouts; Dramatiq retries the
batch), ``ChannelConfigError`` is permanent (bad credentials or configuration: fix and rerun).
"""

from __future__ import annotations

from infra.errors import QuanpaiError


class ChannelError(QuanpaiError):
    """Base of the channel errors; ``code`` is the provider's code when one was given."""

    def __init__(self, message: str = "", *, code: str = "") -> None:
        super().__init__(message)
        self.code = code


class ChannelUnavailable(ChannelError):
    """The provider could not be reached or answered 5xx: retry later."""


class ChannelConfigError(ChannelError):
    """Credentials, signature or template configuration rejected: retrying will not help."""


class ContentError(ChannelError):
    """A campaign's message content breaks a channel's rules (permanent: fix the template).

    ``problems`` lists ``(field, what is wrong)`` pairs so an API can answer 4xx naming each."""

    def __init__(self, problems: list[tuple[str, str]]) -> None:
        self.problems = problems
        super().__init__("; ".join(f"{field}: {what}" for field, what in problems))
