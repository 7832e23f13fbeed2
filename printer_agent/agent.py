"""The running agent: four loops over one spool and one printer.

- *receive*: long-poll the service for this store's jobs, spool them (SQLite, synced), then
  acknowledge receipt. The spool's cursor, not the acknowledgement, decides what is asked for
  next, so a lost acknowledgement costs nothing.
- *print*: the oldest unprinted job, one at a time (the agent owns the printer). A printer that
  refuses (off, unplugged, paper out, cover open) keeps the job at the head: later jobs wait
  behind it and everything prints in order when it is back.
- *report*: printed and failed job ids and the agent's and printer's status to the service.
- *outbox*: points-QR requests from the POS, delivered to the service until it has them.

Slow calls (SQLite commits, the printer's socket or USB) run in worker threads so the POS
endpoint always answers at once; the printer is used under one lock (status reads included).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import time
from collections.abc import Callable
from typing import Any

from printer_agent.devices import PrinterSink
from printer_agent.errors import (
    JobInvalid,
    PrinterUnavailable,
    ServiceRefused,
    ServiceUnavailable,
    TemplateError,
)
from printer_agent.jobs import Job
from printer_agent.service import Backoff, ServiceClient
from printer_agent.spool import Spool
from printer_agent.status import PrinterStatus

log = logging.getLogger("quanpai.printer_agent")
Render = Callable[[Job, bool], bytes]


class Agent:
    def __init__(
        self, *, spool: Spool, printer: PrinterSink, service: ServiceClient, render: Render,
        status_interval: float = 10.0, retry_interval: float = 2.0, poll_wait: int = 25,
    ) -> None:
        self.spool = spool
        self.printer = printer
        self.service = service
        self.render = render
        self.status_interval = status_interval
        self.retry_interval = retry_interval
        self.poll_wait = poll_wait
        self.connected = False
        self.service_error = ""
        self.printer_status = PrinterStatus("unknown", "not checked yet")
        self.started_at = time.time()
        self._jobs = asyncio.Event()
        self._report = asyncio.Event()
        self._outbox = asyncio.Event()
        self._printer_lock = asyncio.Lock()

    def wake_outbox(self) -> None:
        self._outbox.set()

    async def run(self) -> None:
        """Run every loop until cancelled."""
        async with asyncio.TaskGroup() as group:
            group.create_task(self.receive_loop())
            group.create_task(self.print_loop())
            group.create_task(self.report_loop())
            group.create_task(self.outbox_loop())

    async def receive_loop(self) -> None:
        backoff = Backoff()
        while True:
            cursor = await asyncio.to_thread(self.spool.get_meta, "cursor")
            try:
                jobs, new_cursor = await self.service.poll(after=cursor, wait=self.poll_wait)
                if jobs or new_cursor != cursor:
                    added = await asyncio.to_thread(self.spool.add, jobs, cursor=new_cursor)
                    if added:
                        log.info("spooled %d job(s) up to %s", added, new_cursor)
                    self._jobs.set()
                    await self.service.ack_received(new_cursor)
                self.connected, self.service_error = True, ""
                backoff.reset()
            except (ServiceUnavailable, ServiceRefused, JobInvalid) as exc:
                self.connected, self.service_error = False, str(exc)
                delay = backoff.next()
                log.warning("job feed: %s; again in %.1f s", exc, delay)
                await asyncio.sleep(delay)

    async def print_loop(self) -> None:
        while True:
            entry = await asyncio.to_thread(self.spool.next_job)
            if entry is None:
                self._jobs.clear()
                try:
                    await asyncio.wait_for(self._jobs.wait(), timeout=self.status_interval)
                except TimeoutError:
                    await self.check_printer()
                continue
            reprint = entry.state == "printing"  # it may have printed before a crash
            try:
                data = self.render(entry.job, reprint)
            except (TemplateError, JobInvalid) as exc:
                log.error("job %s cannot print: %s", entry.job.job_id, exc)
                await asyncio.to_thread(self.spool.mark_failed, entry.seq, str(exc))
                self._report.set()
                continue
            await asyncio.to_thread(self.spool.mark_printing, entry.seq)
            try:
                async with self._printer_lock:
                    status = await asyncio.to_thread(self.printer.print_job, data)
            except PrinterUnavailable as exc:
                self._set_printer(PrinterStatus(exc.state, str(exc)))
                if exc.sent:
                    await asyncio.to_thread(self.spool.note_error, entry.seq, str(exc))
                else:
                    await asyncio.to_thread(self.spool.mark_queued, entry.seq, str(exc))
                log.warning("job %s waits: %s", entry.job.job_id, exc)
                await asyncio.sleep(self.retry_interval)
                continue
            await asyncio.to_thread(self.spool.mark_printed, entry.seq)
            self._set_printer(status)
            log.info("printed %s%s", entry.job.job_id, " (reprint)" if reprint else "")
            self._report.set()

    async def check_printer(self) -> None:
        async with self._printer_lock:
            self._set_printer(await asyncio.to_thread(self.printer.status))

    def _set_printer(self, status: PrinterStatus) -> None:
        changed = status.state != self.printer_status.state
        self.printer_status = status
        if changed:
            self._report.set()

    def status(self) -> dict[str, Any]:
        """What the agent knows of itself, its printer and its spool."""
        return {
            "store_id": self.service.store_id, "pid": os.getpid(),
            "started_at": self.started_at, "reported_at": time.time(),
            "service": {"connected": self.connected, "error": self.service_error},
            "printer": {"target": self.printer.target, **self.printer_status.to_json()},
            "spool": self.spool.summary(),
        }

    async def report_loop(self) -> None:
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._report.wait(), timeout=self.status_interval)
            self._report.clear()
            status = await asyncio.to_thread(self.status)
            await asyncio.to_thread(self.spool.set_meta, "status", json.dumps(status))
            try:
                done = await asyncio.to_thread(self.spool.unreported)
                if done:
                    await self.service.ack_done([j for j, s in done if s == "printed"],
                                               [j for j, s in done if s == "failed"])
                    await asyncio.to_thread(self.spool.mark_reported, [j for j, _ in done])
                await self.service.report_status(status)
            except (ServiceUnavailable, ServiceRefused) as exc:
                log.debug("report: %s", exc)

    async def outbox_loop(self) -> None:
        backoff = Backoff()
        while True:
            pending = await asyncio.to_thread(self.spool.outbox)
            if not pending:
                self._outbox.clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._outbox.wait(), timeout=self.status_interval)
                continue
            for request_id, body in pending:
                try:
                    await self.service.request_points_qr(json.loads(body))
                    await asyncio.to_thread(self.spool.outbox_done, request_id)
                    backoff.reset()
                except ServiceRefused as exc:
                    log.error("points QR %s refused: %s", request_id, exc)
                    await asyncio.to_thread(self.spool.outbox_done, request_id, str(exc))
                except ServiceUnavailable as exc:
                    delay = backoff.next()
                    log.warning("points QR %s waits for the service: %s", request_id, exc)
                    await asyncio.sleep(delay)
                    break

