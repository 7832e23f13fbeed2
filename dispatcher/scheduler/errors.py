"""Errors of the scheduler.

``InvalidDefinition`` names the wrong field of a recurring definition (``trigger.days_before``);
``UnknownSchedule`` is an id nobody added; ``Fenced`` means this process lost the lease while it
was working: another scheduler holds it now, so this one stops writing and stands by.
"""

from __future__ import annotations

from dispatcher.errors import DispatcherError


class ScheduleError(DispatcherError):
    """Base of the scheduler's errors; permanent unless said otherwise."""


class InvalidDefinition(ScheduleError):
    """A recurring definition is invalid; ``field`` is its path, e.g. ``trigger.cooldown_days``."""

    def __init__(self, field: str, problem: str) -> None:
        super().__init__(f"{field}: {problem}")
        self.field = field
        self.problem = problem


class UnknownSchedule(ScheduleError):
    """No definition has that id."""

    def __init__(self, schedule_id: str) -> None:
        super().__init__(f"schedule {schedule_id!r} does not exist (quanpai schedule list)")
        self.schedule_id = schedule_id


class Fenced(ScheduleError):
    """The lease moved to another scheduler: this one's writes are refused (retryable: stand by)."""

    retryable = True


class RunSkipped(ScheduleError):
    """A due run that will not be made: missed by more than its lateness limit."""
