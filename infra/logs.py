"""Structured logs: one JSON object per line, with the request, campaign and batch in hand,
and personal data masked before anything is written.

Every process calls ``configure_logging`` once at start (``dispatcher/cli.py`` does it for every
``quanpai`` command). It installs on the root handler a ``MaskingFilter`` that rewrites each
record's text (message, arguments and traceback) with phone numbers, WeChat openids and Alipay
user ids masked, so no handler, formatter or third-party logger (Dramatiq logs whole messages at
DEBUG, aiohttp logs request lines with query strings) ever sees them in clear. The ids come from
context variables that request middleware and the worker's Dramatiq middleware set.
"""

from __future__ import annotations

import contextvars
import json
import logging
import re
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from types import TracebackType
from typing import IO, Any

LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")

# Mainland mobile numbers, optionally with the country code; not inside a longer digit run
# (order numbers, millisecond timestamps), so those stay readable.
_PHONE = re.compile(r"(?<!\d)(\+?86[- ]?)?(1[3-9]\d)(\d{4})(\d{4})(?!\d)")
# Alipay user ids: 2088 followed by 12 digits.
_ALIPAY = re.compile(r"(?<!\d)(2088)(\d{8})(\d{4})(?!\d)")
# WeChat openids: 28 characters of [A-Za-z0-9_-] starting with "o", standing alone.
_OPENID = re.compile(r"(?<![A-Za-z0-9_-])(o[A-Za-z0-9_-]{3})[A-Za-z0-9_-]{20}"
                     r"([A-Za-z0-9_-]{4})(?![A-Za-z0-9_-])")

request_id: contextvars.ContextVar[str] = contextvars.ContextVar("request_id", default="")
campaign_id: contextvars.ContextVar[str] = contextvars.ContextVar("campaign_id", default="")
batch_id: contextvars.ContextVar[str] = contextvars.ContextVar("batch_id", default="")
_CONTEXT = {"request_id": request_id, "campaign_id": campaign_id, "batch_id": batch_id}


def mask(text: str) -> str:
    """``text`` with phone numbers (``138****0000``), Alipay user ids (``2088********1234``)
    and openids (``oAbc********************wxyz``) masked."""
    if not text:
        return text
    text = _PHONE.sub(lambda m: f"{m[1] or ''}{m[2]}****{m[4]}", text)
    text = _ALIPAY.sub(lambda m: f"{m[1]}********{m[3]}", text)
    return _OPENID.sub(lambda m: f"{m[1]}{'*' * 20}{m[2]}", text)


@contextmanager
def log_context(**ids: str) -> Iterator[None]:
    """Within the block, every log line carries these ids (``request_id``, ``campaign_id``,
    ``batch_id``); the previous values come back afterwards."""
    tokens = []
    for name, value in ids.items():
        if name not in _CONTEXT:
            raise ValueError(f"unknown log context field {name!r}: use {', '.join(_CONTEXT)}")
        tokens.append((_CONTEXT[name], _CONTEXT[name].set(value)))
    try:
        yield
    finally:
        for var, token in reversed(tokens):
            var.reset(token)


def context_ids() -> dict[str, str]:
    """The ids set in the current context (empty ones left out)."""
    return {name: value for name, var in _CONTEXT.items() if (value := var.get())}


class MaskingFilter(logging.Filter):
    """Replaces a record's message, arguments and traceback with their masked text.

    A filter on the handler rather than on a logger: filters on a logger do not see records
    that child loggers (``dramatiq``, ``aiohttp.access``) propagate to it."""

    def filter(self, record: logging.LogRecord) -> bool:
        if getattr(record, "_masked", False):
            return True
        try:
            text = record.getMessage()
        except (TypeError, ValueError):  # a bad format string: keep what there is, masked
            text = f"{record.msg} {record.args}"
        record.msg, record.args = mask(text), None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = mask(record.exc_text)
        if record.stack_info:
            record.stack_info = mask(record.stack_info)
        record._masked = True
        return True


_RESERVED = frozenset(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {
    "message", "asctime", "_masked", "taskName"}


class JsonFormatter(logging.Formatter):
    """One JSON object per line: ts, level, logger, msg, process, the context ids, any
    ``extra=`` fields, and ``exc`` with the traceback."""

    def __init__(self, *, process_name: str) -> None:
        super().__init__()
        self._process = process_name

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "msg": record.getMessage(),
            "process": self._process,
            "pid": record.process,
        }
        line.update(context_ids())
        for key, value in record.__dict__.items():
            if key not in _RESERVED and key not in line:
                line[key] = value if isinstance(value, int | float | bool) else str(value)
        if record.exc_info and not record.exc_text:
            record.exc_text = self.formatException(record.exc_info)
        if record.exc_text:
            line["exc"] = record.exc_text
        # Extra fields are not covered by the filter: mask the finished line as well.
        return mask(json.dumps(line, ensure_ascii=False, default=str))


_HANDLER_NAME = "quanpai"


class _StderrHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """Writes to whatever ``sys.stderr`` is at the time (test runners swap it)."""

    @property  # type: ignore[override]
    def stream(self) -> IO[str]:
        return sys.stderr

    @stream.setter
    def stream(self, value: IO[str]) -> None:
        pass


def configure_logging(
    *, level: str = "INFO", process_name: str = "quanpai", stream: IO[str] | None = None,
) -> logging.Handler:
    """Send every logger's records to ``stream`` (stderr) as masked JSON lines at ``level``.

    Idempotent: a second call replaces the handler of the first. Uncaught exceptions (main
    thread and other threads) are logged through it too, so their text is masked as well."""
    if level.upper() not in LEVELS:
        raise ValueError(f"log level {level!r}: use one of {', '.join(LEVELS)}")
    root = logging.getLogger()
    for old in [h for h in root.handlers if h.get_name() == _HANDLER_NAME]:
        root.removeHandler(old)
    handler: logging.Handler = (
        logging.StreamHandler(stream) if stream is not None else _StderrHandler())
    handler.set_name(_HANDLER_NAME)
    handler.addFilter(MaskingFilter())
    handler.setFormatter(JsonFormatter(process_name=process_name))
    root.addHandler(handler)
    root.setLevel(level.upper())
    logging.captureWarnings(True)
    sys.excepthook = _log_uncaught
    threading.excepthook = _log_thread_uncaught
    return handler


def _log_uncaught(kind: type[BaseException], value: BaseException,
                  tb: TracebackType | None) -> None:
    if issubclass(kind, KeyboardInterrupt):
        sys.__excepthook__(kind, value, tb)
        return
    logging.getLogger("quanpai").critical("uncaught exception", exc_info=(kind, value, tb))


def _log_thread_uncaught(args: threading.ExceptHookArgs) -> None:
    if args.exc_value is None or isinstance(args.exc_value, SystemExit):
        return
    logging.getLogger("quanpai").critical(
        "uncaught exception in thread %s", args.thread.name if args.thread else "?",
        exc_info=(args.exc_type, args.exc_value, args.exc_traceback))
