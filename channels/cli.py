"""``quanpai simulate``: the WeChat, Aliyun SMS and Alipay simulators, in one process or (with
``--only``) one provider per process.

Credentials come from the same ``Settings`` a worker reads, so both sides agree on keys and
secrets when started with the same environment. Stops cleanly on SIGTERM or SIGINT.
"""

from __future__ import annotations

import argparse
import asyncio
import signal
import sys

from aiohttp import web

from channels.simulators import build_apps
from channels.simulators.common import Faults
from infra.cli_support import UsageError
from infra.settings import Settings


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = sub.add_parser("simulate", help="run the WeChat / SMS / Alipay simulators")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--wechat-port", type=int, default=18701)
    parser.add_argument("--sms-port", type=int, default=18702)
    parser.add_argument("--alipay-port", type=int, default=18703)
    parser.add_argument("--callback-url", default="",
                        help="where delivery callbacks go (base URL of channels.callbacks)")
    parser.add_argument("--latency-ms", type=float, default=0.0)
    parser.add_argument("--error-share", type=float, default=0.0, help="share answered HTTP 503")
    parser.add_argument("--timeout-share", type=float, default=0.0, help="share left hanging")
    parser.add_argument("--quota-share", type=float, default=0.0,
                        help="share answered with the provider's quota error")
    parser.add_argument("--system-error-share", type=float, default=0.0,
                        help="share answered with the provider's 'system busy' error")
    parser.add_argument("--unsubscribed-share", type=float, default=0.0,
                        help="share of WeChat/Alipay users that cannot be reached")
    parser.add_argument("--invalid-share", type=float, default=0.0,
                        help="share of phone numbers whose receipt says undeliverable")
    parser.add_argument("--duplicate-share", type=float, default=0.0,
                        help="share of callbacks pushed twice")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--only", action="append", choices=PROVIDERS, default=None,
                        help="serve only this provider (repeatable; default: all three)")
    parser.set_defaults(func=run)


def faults_from(args: argparse.Namespace) -> Faults:
    """Validated fault options (exit 2 naming the option when a share is outside [0, 1])."""
    shares = {"--error-share": args.error_share, "--timeout-share": args.timeout_share,
              "--quota-share": args.quota_share,
              "--system-error-share": args.system_error_share,
              "--unsubscribed-share": args.unsubscribed_share,
              "--invalid-share": args.invalid_share, "--duplicate-share": args.duplicate_share}
    for option, value in shares.items():
        if not 0.0 <= value <= 1.0:
            raise UsageError(f"{option}={value} must be between 0 and 1")
    if args.latency_ms < 0:
        raise UsageError(f"--latency-ms={args.latency_ms} must not be negative")
    for option in ("wechat_port", "sms_port", "alipay_port"):
        if not 0 <= getattr(args, option) <= 65535:
            raise UsageError(f"--{option.replace('_', '-')} must be a port between 0 and 65535")
    return Faults(latency_ms=args.latency_ms, error_share=args.error_share,
                  timeout_share=args.timeout_share, quota_share=args.quota_share,
                  system_error_share=args.system_error_share,
                  unsubscribed_share=args.unsubscribed_share, invalid_share=args.invalid_share,
                  duplicate_callback_share=args.duplicate_share, seed=args.seed)


PROVIDERS = ("wechat", "sms", "alipay")
_PATHS = {"alipay": "/gateway.do"}  # the Alipay gateway is one path; the others are origins


async def serve(apps: dict[str, tuple[web.Application, int]], host: str,
                stop: asyncio.Event) -> None:
    """Serve every app on its port until ``stop`` is set, then shut all down."""
    runners = []
    try:
        for name, (app, port) in apps.items():
            runner = web.AppRunner(app, access_log=None)
            await runner.setup()
            runners.append(runner)
            site = web.TCPSite(runner, host, port)
            await site.start()
            bound = runner.addresses[0][1] if runner.addresses else port
            base = f"http://{host}:{bound}{_PATHS.get(name, '')}"
            print(f"{name} simulator on {base}", file=sys.stderr, flush=True)
            # ready to paste into the environment (or a .env file) of workers and callbacks
            print(f"{name.upper()}_BASE_URL={base}", flush=True)
        await stop.wait()
    finally:
        for runner in reversed(runners):
            await runner.cleanup()


def run(args: argparse.Namespace, settings: Settings) -> int:
    faults = faults_from(args)
    apps = build_apps(settings, faults=faults, callback_base=args.callback_url.rstrip("/"))
    ports = {"wechat": args.wechat_port, "sms": args.sms_port, "alipay": args.alipay_port}
    only = set(args.only or PROVIDERS)
    wanted = {name: (app, ports[name]) for name, app in apps.items() if name in only}

    async def main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        try:
            await serve(wanted, args.host, stop)
        except OSError as exc:
            raise UsageError(f"cannot listen on {args.host}: {exc.strerror}") from None

    asyncio.run(main())
    print("simulators stopped", flush=True)
    return 0
