"""Issue 15's end-to-end flow: one million coupons a minute on this 2-core machine.

Every run: synthetic members -> campaign to every member (channels WeChat card mass send, SMS,
Alipay voucher) -> Dramatiq workers -> catalog issuance -> channel requests over HTTP -> delivery
callbacks -> a ``quanpai loader`` process -> chDB -> ROI, with SMS quiet hours off and Redis AOF
on. ``bench.flow_run`` holds the instrument (CPU by process, sent per channel); this module the
runs and their targets:

- headline: the simulators answer, as strict as the providers; 1M coupons in ≤ 60 s and
  Quanpai's own CPU (workers + launcher + loader + redis-server) ≤ 60 µs a coupon;
- engine-only: ``bench.stub_providers`` answer (canned, validly signed, unchecked); 1M ≤ 30 s;
- scaling: coupons/s with one and with two worker processes (simulators);
- the naive way (``bench.naive``): one Dramatiq message and one provider request per member,
  beside the engine on the same members; the engine must be ≥ 20× faster.
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass, replace
from pathlib import Path

import pandas as pd
from rich.console import Console

from bench.flow_run import STUB_PROVIDERS, FlowRun, run_flow, run_naive
from bench.report import Result
from dispatcher.commands.demo import member_data
from dispatcher.local_stack import SIMULATORS
from infra.settings import Settings, load_settings


@dataclass(frozen=True)
class Sizes:
    headline: int
    scaling: int
    naive: int


SIZES = {"quick": Sizes(headline=20_000, scaling=10_000, naive=3_000),
         "full": Sizes(headline=1_000_000, scaling=200_000, naive=100_000)}
MILLION_PER_MINUTE = 1_000_000 / 60
ENGINE_ONLY_PER_S = 1_000_000 / 30
OWN_CPU_US = 60.0
NAIVE_SPEEDUP = 20.0
OWN_ROLES = ("workers", "launcher", "loader", "redis-server")


def bench_settings(root: Path, name: str) -> Settings:
    """Default settings with everything under ``root/name`` and no external services."""
    return replace(load_settings({}), var_dir=root / name, redis_url=None, clickhouse_url=None)


def bench_members(root: Path, count: int, *, seed: int = 42) -> pd.DataFrame:
    """The synthetic member base of ``count`` (generated once under ``root/data``)."""
    data_dir = member_data(bench_settings(root, "data"), members=count, seed=seed,
                           console=Console(quiet=True))
    return pd.read_parquet(data_dir / "members.parquet")


def per_coupon_us(run: FlowRun, *roles: str) -> float:
    return sum(run.cpu_s.get(role, 0.0) for role in roles) / run.issued * 1e6


def flow_rows(scenario: str, run: FlowRun, *, per_s_target: float,
              wall_target: float | None, providers: str,
              alipay_per_s: float | None = None) -> list[Result]:
    """The rows of one measured run: time, rate, completeness and CPU per coupon by role; with
    ``alipay_per_s`` (the workers' Alipay request rate) also the least wall time that rate
    allows, since Alipay takes one request a member."""
    if run.issued != run.members:
        raise RuntimeError(f"{scenario}: issued {run.issued} coupons to {run.members} members")
    sent = sum(run.sent.values())
    rows = [
        Result(scenario, "issue + send wall time (launch to every batch done)", run.wall_s, "s",
               target=wall_target),
        Result(scenario, "coupons issued and sent per second", run.members / run.wall_s,
               "coupons/s", target=per_s_target, better="higher"),
        Result(scenario, "wall time incl. every event loaded into chDB", run.loaded_s, "s"),
        Result(scenario, "reachable members not sent (SMS quiet hours off)",
               run.reachable - sent, "members", target=0),
        Result(scenario, "batches deferred to a later window", run.deferred_batches, "batches",
               target=0),
        Result(scenario, "Redis AOF on (appendonly yes)", float(run.aof == "yes"), "bool",
               target=1, better="higher"),
    ]
    rows += [Result(scenario, f"members sent via {channel}", n, "members")
             for channel, n in sorted(run.sent.items())]
    if alipay_per_s:
        rows.append(Result(scenario, f"least wall time Alipay's {alipay_per_s:,.0f} requests/s "
                           "allow (one request a member)", run.sent.get("alipay", 0) /
                           alipay_per_s, "s"))
    roles = [("workers", "workers (issue + send + events)"),
             ("launcher", "launcher (plan + enqueue)"), ("loader", "loader (events -> chDB)"),
             ("redis-server", "redis-server"), (providers, providers),
             ("callbacks", "callback receiver")]
    rows += [Result(scenario, f"CPU per coupon: {label}", per_coupon_us(run, role), "µs")
             for role, label in roles]
    rows.append(Result(scenario, "Quanpai own CPU per coupon (workers + launcher + loader + "
                       "redis)", per_coupon_us(run, *OWN_ROLES), "µs", target=OWN_CPU_US))
    return rows


def run(*, size: str) -> list[Result]:
    sizes = SIZES[size]
    results: list[Result] = []
    with tempfile.TemporaryDirectory(prefix="quanpai-bench-flow-") as tmp:
        root = Path(tmp)
        everyone = bench_members(root, sizes.headline)
        n = f"{sizes.headline:,}"
        full = sizes.headline >= 1_000_000
        # the rate the workers read (they load settings from this environment and directory)
        alipay_per_s = float(load_settings().alipay.requests_per_s)
        headline = run_flow(everyone, settings=bench_settings(root, "headline"),
                            providers=SIMULATORS)
        results += flow_rows(f"flow {n} members", headline, per_s_target=MILLION_PER_MINUTE,
                             wall_target=60.0 if full else None, providers="simulators",
                             alipay_per_s=alipay_per_s)
        engine = run_flow(everyone, settings=bench_settings(root, "engine"),
                          providers=STUB_PROVIDERS)
        results += flow_rows(f"flow engine-only {n} members", engine,
                             per_s_target=ENGINE_ONLY_PER_S,
                             wall_target=30.0 if full else None, providers="stub providers",
                             alipay_per_s=alipay_per_s)
        results += _scaling(root, everyone.head(sizes.scaling))
        results += _naive(root, everyone.head(sizes.naive))
    return results


def _scaling(root: Path, members: pd.DataFrame) -> list[Result]:
    scenario = f"flow scaling {len(members):,} members"
    rates = {}
    for processes in (1, 2):
        measured = run_flow(members, settings=bench_settings(root, f"scaling-{processes}"),
                            processes=processes)
        rates[processes] = measured.members / measured.wall_s
    return [
        Result(scenario, "coupons/s with 1 worker process", rates[1], "coupons/s"),
        Result(scenario, "coupons/s with 2 worker processes", rates[2], "coupons/s"),
        Result(scenario, "2 processes over 1", rates[2] / rates[1], "×"),
    ]


def _naive(root: Path, members: pd.DataFrame) -> list[Result]:
    scenario = f"flow naive {len(members):,} members"
    batched = run_flow(members, settings=bench_settings(root, "batched"))
    naive = run_naive(members, settings=bench_settings(root, "naive"))
    if naive.issued != naive.members:
        raise RuntimeError(f"{scenario}: issued {naive.issued} coupons to {naive.members}")
    engine_rate = batched.members / batched.wall_s
    naive_rate = naive.members / naive.wall_s
    return [
        Result(scenario, "naive way: coupons issued and sent per second (one message and one "
               "request per member)", naive_rate, "coupons/s"),
        Result(scenario, "naive way: reachable members not sent", naive.reachable -
               sum(naive.sent.values()), "members"),
        Result(scenario, "naive way: workers CPU per coupon", per_coupon_us(naive, "workers"),
               "µs"),
        Result(scenario, "engine on the same members: coupons per second", engine_rate,
               "coupons/s"),
        Result(scenario, "speed-up over the naive way", engine_rate / naive_rate, "×",
               target=NAIVE_SPEEDUP, better="higher"),
    ]
