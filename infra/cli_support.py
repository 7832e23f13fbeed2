"""What every ``quanpai`` subcommand shares: the exit codes and the one-line error contract.

Subcommands live beside the code they drive (``segmentation/cli.py``, ``channels/cli.py``, ...);
each exposes ``register(subparsers)`` and sets ``func(args, settings) -> int`` on its parser.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import TYPE_CHECKING

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
