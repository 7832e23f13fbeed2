"""Errors of the infra package.

Every error says what was wrong and what to do. ``SettingsError`` is raised at start-up, before any
work, so a process with a wrong setting changes nothing.
"""

from __future__ import annotations


class QuanpaiError(Exception):
    """Base of every error Quanpai raises on purpose."""


class SettingsError(QuanpaiError):
    """A configuration value is missing or malformed (names the variable)."""


class ServiceError(QuanpaiError):
    """A local service (redis-server, clickhouse-server) could not be found, started or reached."""


class ClickHouseError(QuanpaiError):
    """A ClickHouse statement failed (names the statement's first words)."""


class ClickHouseUnavailable(ClickHouseError, ServiceError):
    """The ClickHouse server could not be reached (a service error, exit 2 in the CLI)."""


class ApiError(QuanpaiError):
    """An error an HTTP route answers as a JSON body (``body()``) with ``status``.

    Every package's routes raise these (or subclasses); ``infra.http_api`` turns them into
    responses. ``retryable`` tells a client or a Dramatiq actor whether trying again may help.
    """

    retryable = False
    status = 400

    def body(self) -> dict[str, str]:
        return {"error": type(self).__name__, "message": str(self)}


class InvalidInput(ApiError):
    """A field of a request, file or template is missing or malformed; nothing was changed."""

    status = 422

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message

    def body(self) -> dict[str, str]:
        return {"error": type(self).__name__, "message": self.message, "field": self.field}


class NotFound(ApiError):
    status = 404


class Refused(ApiError):
    """A legal request the rules refuse; ``reason`` is a stable machine-readable word."""

    status = 409

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason

    def body(self) -> dict[str, str]:
        return {**super().body(), "reason": self.reason}


class Forbidden(ApiError):
    """The caller's role, merchant or store does not allow the action."""

    status = 403


class Unauthorized(ApiError):
    """No bearer token, or one that does not verify or has expired."""

    status = 401


class Unavailable(ApiError):
    """A backing store (Redis, ClickHouse) is down or busy: try again shortly."""

    retryable = True
    status = 503
