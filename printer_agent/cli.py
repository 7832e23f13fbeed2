"""``quanpai printer-agent``: the store printer agent, its status and receipt previews.

    quanpai printer-agent run [--device tcp://192.168.1.50:9100] [--paper 58]
    quanpai printer-agent status [--json] [--probe]
    quanpai printer-agent preview JOB.json --png out.png [--paper 58] [--escpos out.bin]

Settings (``PRINTER_*``, or ``[printer]`` in quanpai.toml) are listed in docs/printer.md; the
flags override them. This module imports only the standard library until a command runs, so
``quanpai printer-agent --help`` works in the small ``quanpai[printer]`` install.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
import time
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from infra.cli_support import UsageError

if TYPE_CHECKING:
    from infra.settings import PrinterSettings, Settings
    from printer_agent.receipt import ReceiptMaker


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = sub.add_parser("printer-agent", help="the store printer agent (receipts, QR codes)",
                            description="Store printer agent: prints points QR codes, "
                            "redemption slips and coupon vouchers on ESC/POS printers.")
    verbs = parser.add_subparsers(dest="verb", required=True, metavar="VERB")

    def common(p: argparse.ArgumentParser) -> None:
        p.add_argument("--paper", type=int, choices=(58, 80), default=None,
                       help="paper width in mm (default: PRINTER_PAPER_MM, 80)")
        p.add_argument("--spool", default=None, help="spool file (default: PRINTER_SPOOL)")

    run = verbs.add_parser("run", help="receive jobs from the catalog service and print them")
    common(run)
    run.add_argument("--device", default=None,
                     help="tcp://host:9100, usb://0xVID:0xPID, serial:///dev/ttyUSB0, "
                          "file:///path (default: PRINTER_DEVICE)")
    run.add_argument("--service-url", default=None, help="catalog API (PRINTER_SERVICE_URL)")
    run.add_argument("--token", default=None, help="the store's printer token (PRINTER_TOKEN)")
    run.add_argument("--listen", default=None, help="POS endpoint host:port (PRINTER_LISTEN)")
    run.add_argument("--status-interval", type=float, default=10.0,
                     help="seconds between status reports (default 10)")
    run.add_argument("--poll-wait", type=int, default=25,
                     help="seconds a long-poll waits for a job (default 25)")
    run.set_defaults(func=run_agent)

    status = verbs.add_parser("status", help="the agent's, printer's and spool's status")
    common(status)
    status.add_argument("--json", action="store_true", help="print JSON")
    status.add_argument("--probe", action="store_true",
                        help="ask the printer itself (DLE EOT) when the agent is not running")
    status.add_argument("--device", default=None, help="printer to probe (PRINTER_DEVICE)")
    status.set_defaults(func=show_status)

    preview = verbs.add_parser("preview", help="render a job as a PNG (and ESC/POS bytes)")
    common(preview)
    preview.add_argument("job", type=Path, help="a job as JSON (as the service sends it)")
    preview.add_argument("--png", type=Path, required=True, help="where to write the image")
    preview.add_argument("--escpos", type=Path, default=None, help="also write the bytes here")
    preview.add_argument("--font", type=Path, default=None, help="a CJK font file")
    preview.add_argument("--reprint", action="store_true", help="with the reprint banner")
    preview.set_defaults(func=run_preview)


def _printer(args: argparse.Namespace, settings: Settings) -> PrinterSettings:
    p = settings.printer
    changes: dict[str, Any] = {}
    for flag, name in (("paper", "paper_mm"), ("spool", "spool"), ("device", "device"),
                       ("service_url", "service_url"), ("token", "token"),
                       ("listen", "listen")):
        value = getattr(args, flag, None)
        if value is not None:
            changes[name] = value
    return replace(p, **changes)


def maker(p: PrinterSettings) -> ReceiptMaker:
    """The receipt maker of these settings."""
    from printer_agent.receipt import ReceiptMaker

    claim = p.claim_url or p.service_url.rstrip("/") + "/claim?t={token}"
    if "{token}" not in claim:
        raise UsageError("PRINTER_CLAIM_URL must contain {token}")
    if p.encoding.lower() not in ("gb18030", "gbk", "gb2312", "cp936", "big5", "utf-8"):
        try:
            "券".encode(p.encoding)
        except LookupError:
            raise UsageError(f"PRINTER_ENCODING={p.encoding!r} is not a known code page") from None
        except UnicodeEncodeError:
            pass  # a single-byte code page: Chinese prints as '?', said in docs/printer.md
    return ReceiptMaker(paper_mm=p.paper_mm, encoding=p.encoding, native_qr=p.native_qr,
                        store_name=p.store_name, claim_url=claim,
                        templates=Path(p.templates) if p.templates else None)


def _listen(text: str) -> tuple[str, int]:
    host, _, port = text.rpartition(":")
    if not host or not port.isdigit() or not 0 <= int(port) <= 65535:
        raise UsageError(f"--listen / PRINTER_LISTEN={text!r}: expected host:port")
    return host, int(port)


def run_agent(args: argparse.Namespace, settings: Settings) -> int:
    import asyncio

    from printer_agent.devices import parse_device

    p = _printer(args, settings)
    if not p.token:
        raise UsageError("PRINTER_TOKEN is not set: the store's printer token "
                         "(quanpai serve --print-token printer --store S001)")
    try:
        parse_device(p.device)
    except ValueError as exc:
        raise UsageError(f"PRINTER_DEVICE={p.device!r}: {exc}") from None
    from printer_agent.service import store_of_token

    try:
        store_of_token(p.token)
    except ValueError as exc:
        raise UsageError(f"PRINTER_TOKEN: {exc}") from None
    host, port = _listen(p.listen)
    receipts = maker(p)
    from printer_agent.runner import serve

    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(serve(p, receipts, host=host, port=port,
                          status_interval=args.status_interval, poll_wait=args.poll_wait))
    return 0


def show_status(args: argparse.Namespace, settings: Settings) -> int:
    from printer_agent.spool import Spool

    p = _printer(args, settings)
    path = Path(p.spool)
    if not path.exists():
        raise UsageError(f"no spool at {path}: the agent has not run here (PRINTER_SPOOL)")
    spool = Spool(path)
    try:
        saved = spool.get_meta("status")
        report: dict[str, Any] = json.loads(saved) if saved else {}
        report["spool"] = spool.summary()
    finally:
        spool.close()
    age = time.time() - float(report.get("reported_at", 0))
    report["agent_running"] = bool(saved) and age < 60
    if args.probe and not report["agent_running"]:
        from printer_agent.devices import open_device

        try:
            report["printer"] = {"target": p.device, **open_device(p.device).status().to_json()}
        except ValueError as exc:
            raise UsageError(f"PRINTER_DEVICE={p.device!r}: {exc}") from None
    if args.json:
        print(json.dumps(report, ensure_ascii=False, indent=2))
        return 0
    _print_status(report, age)
    return 0


def _print_status(report: dict[str, Any], age: float) -> None:
    from printer_agent.status import PrinterStatus

    printer = report.get("printer") or {}
    service = report.get("service") or {}
    spool = report["spool"]
    state = PrinterStatus(printer.get("state", "unknown"), printer.get("detail", ""))
    print(f"代理 agent      {'运行中 running' if report['agent_running'] else '未运行 stopped'}"
          + (f" (pid {report.get('pid')}, {age:.0f} s ago)" if report.get("pid") else ""))
    print(f"门店 store      {report.get('store_id', '-')}")
    print(f"打印机 printer  {printer.get('target', '-')}: {state.describe()}")
    print(f"服务 service    {'已连接 connected' if service.get('connected') else '未连接 '}"
          f"{service.get('error', '') if not service.get('connected') else ''}".rstrip())
    head = spool.get("head")
    print(f"队列 queue      待打印 {spool['queued']} · 已打印 {spool['printed']} · "
          f"失败 {spool['failed']} · 待上报 {spool['unreported']} · 待发送 {spool['outbox']}")
    if head:
        print(f"下一张 next     {head['job_id']} ({head['state']}, {head['attempts']} attempt(s))"
              + (f": {head['error']}" if head["error"] else ""))
    last = spool.get("last_printed")
    if last:
        print(f"最近 last       {last['job_id']} at "
              f"{time.strftime('%Y-%m-%d %H:%M:%S', time.localtime(last['at']))}")


def run_preview(args: argparse.Namespace, settings: Settings) -> int:
    from printer_agent.errors import AgentError
    from printer_agent.jobs import parse_job

    p = _printer(args, settings)
    try:
        raw = json.loads(args.job.read_text(encoding="utf-8-sig"))
    except OSError as exc:
        raise UsageError(f"{args.job}: {exc.strerror}") from None
    except ValueError as exc:
        raise UsageError(f"{args.job}: not valid JSON ({exc})") from None
    receipts = maker(p)
    try:
        job = parse_job(raw)
        if args.escpos:
            args.escpos.write_bytes(receipts.escpos(job, reprint=args.reprint))
        out = receipts.png(job, args.png, font=args.font)
    except AgentError as exc:
        raise UsageError(f"{args.job}: {exc}") from None
    print(f"preview written to {out}", file=sys.stderr)
    return 0
