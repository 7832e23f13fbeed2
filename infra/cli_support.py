"""What every ``quanpai`` subcommand shares: the exit codes and the one-line error contract.

Subcommands live beside the code they drive (``segmentation/cli.py``, ``channels/cli.py``, ...);
each exposes ``register(subparsers)`` and sets ``func(args, settings) -> int`` on its parser.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import TYPE_CHECKING, NoReturn

from infra.errors import QuanpaiError

if TYPE_CHECKING:
    from infra.settings import Settings

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2

Command = Callable[[argparse.Namespace, "Settings"], int]
Subparsers = "argparse._SubParsersAction[argparse.ArgumentParser]"


class UsageError(QuanpaiError):
    """Bad input on the command line or in a file it names: exit 2, one line, nothing changed."""


class OneLineParser(argparse.ArgumentParser):
    """An argument parser whose usage errors are one line on stderr and exit 2, like every other
    bad input (argparse prints its whole usage first). Subcommand parsers inherit the class."""

    def error(self, message: str) -> NoReturn:
        self.exit(EXIT_USAGE, f"quanpai: {message} (see {self.prog} --help)\n")


def _classes(exc: BaseException) -> set[tuple[str, str]]:
    return {(c.__module__.split(".")[0], c.__name__) for c in type(exc).__mro__}


def environment_error(exc: BaseException) -> str | None:
    """One line for a failure of the surroundings rather than of the code: a service that
    cannot be reached, a path that cannot be written, a file in an unexpected encoding.
    None for anything else (a bug keeps its traceback). Matched by class name, so this works
    whichever optional drivers are installed."""
    found = _classes(exc)
    if found & {("redis", "ConnectionError"), ("redis", "TimeoutError"),
                ("redis", "BusyLoadingError"), ("dramatiq", "ConnectionError")}:
        return (f"Redis is unreachable ({exc}): start the local one with `quanpai services up`, "
                "or set REDIS_URL to a running server")
    if found & {("clickhouse_driver", "NetworkError"), ("clickhouse_driver", "SocketTimeoutError"),
                ("clickhouse_driver", "UnexpectedPacketFromServerError")}:
        return (f"ClickHouse is unreachable ({str(exc).splitlines()[0]}): check CLICKHOUSE_URL "
                "or unset it to use the embedded chDB")
    if isinstance(exc, UnicodeDecodeError):
        return (f"a file is not text in the expected encoding ({exc.reason} at byte "
                f"{exc.start}): pass --encoding (utf-8, gbk, gb18030) or save it as UTF-8")
    if isinstance(exc, OSError) and exc.filename is not None:
        what = {PermissionError: "is not writable or readable (permission denied)",
                FileNotFoundError: "does not exist", FileExistsError: "already exists",
                IsADirectoryError: "is a directory", NotADirectoryError: "is not a directory"}
        words = next((text for kind, text in what.items() if isinstance(exc, kind)),
                     exc.strerror or "cannot be used")
        return f"{exc.filename} {words}: check the path (and QUANPAI_VAR)"
    return None
