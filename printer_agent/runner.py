"""The composition root of ``quanpai printer-agent run``: builds the spool, the printer, the
HTTP session and the POS endpoint from settings, runs the agent, and closes them on exit."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from pathlib import Path

import aiohttp
from aiohttp import web

from infra.settings import PrinterSettings
from printer_agent.agent import Agent
from printer_agent.devices import open_device
from printer_agent.local_api import make_local_app
from printer_agent.receipt import ReceiptMaker
from printer_agent.service import ServiceClient
from printer_agent.spool import Spool

log = logging.getLogger("quanpai.printer_agent")


async def serve(
    p: PrinterSettings, receipts: ReceiptMaker, *, host: str, port: int,
    status_interval: float = 10.0, poll_wait: int = 25,
) -> None:
    """Run until SIGTERM or SIGINT; jobs in the spool wait for the next start."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    # python-escpos logs every connection at INFO on the root logger
    logging.getLogger().handlers[0].addFilter(
        lambda record: record.levelno >= logging.WARNING or "escpos" not in record.pathname)
    spool = Spool(Path(p.spool))
    printer = open_device(p.device)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    async with aiohttp.ClientSession() as session:
        service = ServiceClient(base_url=p.service_url, token=p.token, session=session)
        agent = Agent(spool=spool, printer=printer, service=service,
                      render=lambda job, reprint: receipts.escpos(job, reprint=reprint),
                      status_interval=status_interval, poll_wait=poll_wait)
        runner = web.AppRunner(make_local_app(agent), access_log=None)
        await runner.setup()
        await web.TCPSite(runner, host, port).start()
        log.info("printer agent for store %s: printer %s, POS endpoint http://%s:%d",
                 service.store_id, printer.target, host, port)
        task = asyncio.create_task(agent.run())
        await stop.wait()
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        await runner.cleanup()
    spool.close()
