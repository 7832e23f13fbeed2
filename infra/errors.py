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
