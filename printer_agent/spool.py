"""The agent's durable queue: SQLite in WAL mode, written before anything is acknowledged.

Jobs print in the order they were spooled (``seq``). A job's states::

    queued -> printing -> printed          (reported = 1 once the service has the ack)
                 \\-> queued                (the printer refused it before any byte went out)

``printing`` is written, and synced, before the first byte goes to the printer. A job found in
``printing`` when the agent starts (or after a failure part-way) may have printed: it is printed
again with a reprint banner and its job id, so a duplicate is recognisable (at least once; see
docs/printer.md). ``synchronous=FULL`` makes every commit durable across a power cut.
"""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from printer_agent.jobs import Job, parse_job

SCHEMA = """
CREATE TABLE IF NOT EXISTS jobs (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    job_id TEXT NOT NULL UNIQUE,
    kind TEXT NOT NULL,
    body TEXT NOT NULL,
    state TEXT NOT NULL DEFAULT 'queued',
    attempts INTEGER NOT NULL DEFAULT 0,
    received_at REAL NOT NULL,
    started_at REAL,
    printed_at REAL,
    reported INTEGER NOT NULL DEFAULT 0,
    error TEXT NOT NULL DEFAULT ''
);
CREATE INDEX IF NOT EXISTS jobs_open ON jobs (state, seq);
CREATE TABLE IF NOT EXISTS outbox (
    request_id TEXT PRIMARY KEY,
    body TEXT NOT NULL,
    created_at REAL NOT NULL,
    error TEXT NOT NULL DEFAULT ''
);
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
"""


@dataclass(frozen=True)
class SpooledJob:
    seq: int
    job: Job
    state: str
    attempts: int


class Spool:
    """One SQLite file; every method is one short transaction (safe from several threads)."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self._db = sqlite3.connect(str(path), timeout=30, isolation_level=None,
                                   check_same_thread=False)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")
        self._db.executescript(SCHEMA)

    def close(self) -> None:
        self._db.close()

    @contextmanager
    def _tx(self) -> Iterator[sqlite3.Connection]:
        self._db.execute("BEGIN IMMEDIATE")
        try:
            yield self._db
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        self._db.execute("COMMIT")

    def add(self, jobs: Sequence[Job], *, cursor: str | None = None) -> int:
        """Spool ``jobs`` (a job id already spooled is skipped) and move the service cursor,
        in one transaction; returns how many were new."""
        now = time.time()
        with self._tx() as db:
            before = db.total_changes
            db.executemany(
                "INSERT OR IGNORE INTO jobs (job_id, kind, body, received_at) VALUES (?,?,?,?)",
                [(j.job_id, j.kind, j.encode(), now) for j in jobs])
            added: int = db.total_changes - before
            if cursor is not None:
                db.execute("INSERT OR REPLACE INTO meta VALUES ('cursor', ?)", (cursor,))
        return added

    def get_meta(self, key: str, default: str = "") -> str:
        row = self._db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return str(row[0]) if row else default

    def set_meta(self, key: str, value: str) -> None:
        self._db.execute("INSERT OR REPLACE INTO meta VALUES (?, ?)", (key, value))

    def next_job(self) -> SpooledJob | None:
        """The oldest job not yet printed."""
        row = self._db.execute(
            "SELECT seq, body, state, attempts FROM jobs WHERE state IN ('queued', 'printing') "
            "ORDER BY seq LIMIT 1").fetchone()
        if row is None:
            return None
        return SpooledJob(seq=row[0], job=parse_job(json.loads(row[1])), state=row[2],
                          attempts=row[3])

    def mark_printing(self, seq: int) -> None:
        self._db.execute("UPDATE jobs SET state = 'printing', attempts = attempts + 1, "
                         "started_at = ? WHERE seq = ?", (time.time(), seq))

    def mark_queued(self, seq: int, error: str) -> None:
        """Back to waiting: the printer took no byte of it."""
        self._db.execute("UPDATE jobs SET state = 'queued', error = ? WHERE seq = ?",
                         (error, seq))

    def note_error(self, seq: int, error: str) -> None:
        self._db.execute("UPDATE jobs SET error = ? WHERE seq = ?", (error, seq))

    def mark_printed(self, seq: int) -> None:
        self._db.execute("UPDATE jobs SET state = 'printed', printed_at = ?, error = '' "
                         "WHERE seq = ?", (time.time(), seq))

    def mark_failed(self, seq: int, error: str) -> None:
        """A job that can never print (a bad template or job): kept, reported, not retried."""
        self._db.execute("UPDATE jobs SET state = 'failed', error = ? WHERE seq = ?",
                         (error, seq))

    def unreported(self, limit: int = 100) -> list[tuple[str, str]]:
        """(job id, state) of printed or failed jobs the service has not acknowledged."""
        rows = self._db.execute(
            "SELECT job_id, state FROM jobs WHERE state IN ('printed', 'failed') AND "
            "reported = 0 ORDER BY seq LIMIT ?", (limit,)).fetchall()
        return [(r[0], r[1]) for r in rows]

    def mark_reported(self, job_ids: Sequence[str]) -> None:
        with self._tx() as db:
            db.executemany("UPDATE jobs SET reported = 1 WHERE job_id = ?",
                           [(j,) for j in job_ids])

    def outbox_add(self, request_id: str, body: str) -> bool:
        """Keep a request for the service until it is delivered; False when already kept."""
        cur = self._db.execute("INSERT OR IGNORE INTO outbox VALUES (?, ?, ?, '')",
                               (request_id, body, time.time()))
        return cur.rowcount == 1

    def outbox(self) -> list[tuple[str, str]]:
        rows = self._db.execute(
            "SELECT request_id, body FROM outbox WHERE error = '' ORDER BY created_at").fetchall()
        return [(r[0], r[1]) for r in rows]

    def outbox_done(self, request_id: str, error: str = "") -> None:
        if error:
            self._db.execute("UPDATE outbox SET error = ? WHERE request_id = ?",
                             (error, request_id))
        else:
            self._db.execute("DELETE FROM outbox WHERE request_id = ?", (request_id,))

    def summary(self) -> dict[str, Any]:
        """Counts by state, the job being printed and the last printed, for ``status``."""
        counts = dict(self._db.execute(
            "SELECT state, count(*) FROM jobs GROUP BY state").fetchall())
        last = self._db.execute(
            "SELECT job_id, printed_at FROM jobs WHERE state = 'printed' "
            "ORDER BY printed_at DESC LIMIT 1").fetchone()
        head = self._db.execute(
            "SELECT job_id, state, attempts, error FROM jobs WHERE state IN "
            "('queued', 'printing') ORDER BY seq LIMIT 1").fetchone()
        waiting = self._db.execute("SELECT count(*) FROM outbox WHERE error = ''").fetchone()[0]
        return {
            "queued": counts.get("queued", 0) + counts.get("printing", 0),
            "printed": counts.get("printed", 0), "failed": counts.get("failed", 0),
            "unreported": self._db.execute(
                "SELECT count(*) FROM jobs WHERE state IN ('printed','failed') AND reported = 0"
            ).fetchone()[0],
            "outbox": waiting,
            "last_printed": {"job_id": last[0], "at": last[1]} if last else None,
            "head": {"job_id": head[0], "state": head[1], "attempts": head[2],
                     "error": head[3]} if head else None,
        }

    def printed_order(self) -> list[str]:
        """Job ids in the order they were printed (for checks and reconciliation)."""
        return [r[0] for r in self._db.execute(
            "SELECT job_id FROM jobs WHERE state = 'printed' ORDER BY printed_at, seq")]
