"""Named points in the batch path where a test can make its worker die by SIGKILL.

Crash tests need a worker killed at an exact moment (after the provider answered, before the
record), which timing from outside cannot hit reliably. ``QUANPAI_TEST_KILL_AT=<point>`` (read
by ``infra.settings`` as ``test_kill_at``; ``<point>@<n>`` for the n-th time it is reached,
``<point>:<channel>`` for a provider request on that channel only) makes the worker SIGKILL
itself there, once. Unset, as in production, every call is a no-op.

Points, in batch order: ``before_issue``, ``after_issue`` (issued, nothing sent),
``in_flight`` (a provider request has left; the kill lands 100 ms later, while the provider
is still answering), ``after_answer`` (answered, outcome not recorded), ``before_ack`` (batch
recorded done, message not acknowledged).
"""

from __future__ import annotations

import os
import signal
import threading

POINTS = ("before_issue", "after_issue", "in_flight", "after_answer", "before_ack")
IN_FLIGHT_DELAY_S = 0.1


class KillPoints:
    def __init__(self, spec: str = "") -> None:
        where, _, nth = spec.partition("@")
        name, _, channel = where.partition(":")
        if name and name not in POINTS:
            raise ValueError(f"unknown kill point {name!r} (use {', '.join(POINTS)})")
        self._name = name
        self._channel = channel
        self._left = int(nth or "1")
        self._lock = threading.Lock()

    @property
    def armed(self) -> bool:
        return bool(self._name)

    def reached(self, name: str, channel: str = "") -> None:
        """SIGKILL this process if ``name`` (on ``channel``) is the armed point, at its n-th
        arrival."""
        if name != self._name or (self._channel and channel != self._channel):
            return
        with self._lock:
            self._left -= 1
            fire = self._left == 0
        if not fire:
            return
        if name == "in_flight":
            threading.Timer(IN_FLIGHT_DELAY_S, _die).start()
        else:
            _die()


def _die() -> None:
    os.kill(os.getpid(), signal.SIGKILL)
