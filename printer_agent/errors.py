"""Errors of the printer agent, split into what waits and retries and what never will.

- ``PrinterUnavailable`` (retryable): the printer is off, unplugged, out of paper or its cover is
  open; the job stays in the spool and prints when the printer is back.
- ``ServiceUnavailable`` (retryable): the catalog service cannot be reached or answered 5xx; the
  agent reconnects with backoff and jitter.
- ``ServiceRefused`` (permanent): the service answered 4xx (a wrong token, a bad request).
- ``JobInvalid`` / ``TemplateError`` (permanent): a job or a receipt template that cannot be
  printed; says which field or placeholder.
"""

from __future__ import annotations

from infra.errors import QuanpaiError


class AgentError(QuanpaiError):
    """Base of the printer agent's errors."""


class PrinterUnavailable(AgentError):
    """The printer cannot print now (off, unplugged, paper out, cover open); retry later.

    ``sent`` says whether any byte of the job may have reached the printer, which decides
    whether a retry is marked as a possible duplicate; ``state`` is the printer's state word."""

    def __init__(self, message: str, *, sent: bool = False, state: str = "offline") -> None:
        super().__init__(message)
        self.sent = sent
        self.state = state


class ServiceUnavailable(AgentError):
    """The catalog service is unreachable or failed (5xx); retry with backoff."""


class ServiceRefused(AgentError):
    """The catalog service refused a request (4xx): fix the token or the request."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(f"HTTP {status}: {message}")
        self.status = status


class JobInvalid(AgentError):
    """A print job that cannot be printed: names the field."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field


class TemplateError(AgentError):
    """A receipt template that cannot be read or filled: names the template and the problem."""
