"""``quanpai serve``: the HTTP API (aiohttp on uvloop) that ``dispatcher.app`` composes.

    quanpai serve [--host H] [--port P] [--workers N]
    quanpai serve --print-token cashier --store S001     # mint a bearer token and exit

``--workers N`` runs N processes sharing the port (SO_REUSEPORT); each builds its own clients.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
from typing import Any

from infra.cli_support import UsageError
from infra.settings import Settings


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = sub.add_parser("serve", help="run the HTTP API")
    parser.add_argument("--host", default=None, help="bind address (default: settings api_host)")
    parser.add_argument("--port", type=int, default=None, help="port (default: settings api_port)")
    parser.add_argument("--workers", type=int, default=1, help="processes sharing the port")
    parser.add_argument("--redis-cluster", action="store_true",
                        help="REDIS_URL names a node of a Redis Cluster")
    parser.add_argument("--print-token", metavar="ROLE", default=None,
                        help="print a bearer token for ROLE (operator, cashier, printer, member, "
                        "analyst)")
    parser.add_argument("--store", default="", help="store of a cashier or printer token")
    parser.add_argument("--member", default="", help="member of a member token")
    parser.set_defaults(func=run)


def _serve(settings: Settings, host: str, port: int, redis_url: str, cluster: bool,
           reuse_port: bool) -> None:
    import uvloop
    from aiohttp import web

    uvloop.install()
    from dispatcher.app import build_app

    app = build_app(settings, redis_url=redis_url, cluster=cluster)
    web.run_app(app, host=host, port=port, reuse_port=reuse_port, access_log=None,
                print=None, handle_signals=True)


def _check_port(host: str, port: int) -> None:
    """A port another process holds is a usage error (one line), found before any fork."""
    import socket

    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except socket.gaierror as exc:
        raise UsageError(f"--host {host}: cannot be resolved ({exc.strerror})") from None
    family, kind, proto, _, address = infos[0]
    with socket.socket(family, kind, proto) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(address)
        except OSError as exc:
            raise UsageError(f"cannot listen on {host}:{port} ({exc.strerror}): stop what "
                             "holds the port or pass --port") from None


def run(args: argparse.Namespace, settings: Settings) -> int:
    if args.print_token:
        from infra.errors import InvalidInput
        from infra.tokens import mint_bearer

        try:
            print(mint_bearer(secret=settings.secret_key.encode(), role=args.print_token,
                              merchant_id=settings.merchant_id, store_id=args.store,
                              member_id=args.member))
        except InvalidInput as exc:
            raise UsageError(f"--{exc.field.split('_')[0]}: {exc.message}") from None
        return 0
    if args.workers < 1:
        raise UsageError("--workers must be at least 1")
    from infra.services import resolve_redis_url

    redis_url = resolve_redis_url(settings)
    host = args.host or settings.api_host
    port = settings.api_port if args.port is None else args.port
    _check_port(host, port)
    print(f"Quanpai API on http://{host}:{port} ({args.workers} worker(s))", file=sys.stderr)
    if args.workers == 1:
        _serve(settings, host, port, redis_url, args.redis_cluster, False)
        return 0
    children = []
    for _ in range(args.workers):
        pid = os.fork()
        if pid == 0:
            try:
                _serve(settings, host, port, redis_url, args.redis_cluster, True)
            finally:
                os._exit(0)
        children.append(pid)

    def stop(signum: int, _frame: Any) -> None:
        for child in children:
            os.kill(child, signal.SIGTERM)

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    for child in children:
        while True:
            try:
                os.waitpid(child, 0)
                break
            except ChildProcessError:
                break
            except InterruptedError:
                continue
    return 0


__all__ = ["register", "run"]
