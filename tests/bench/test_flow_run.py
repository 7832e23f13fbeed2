"""The flow benchmark's instrument on a small base: a campaign through the engine (stub
providers) and the naive way (simulators) each reach every reachable member, and the CPU of
each process is found under its role."""

from __future__ import annotations

from pathlib import Path

from bench.flow_run import STUB_PROVIDERS, FlowRun, reachable, role_of, run_flow, run_naive
from bench.scenarios.flow import bench_members, bench_settings, flow_rows


def test_roles_are_read_from_command_lines() -> None:
    assert role_of(["python", "-m", "dispatcher.cli", "worker", "--threads", "8"]) == "workers"
    assert role_of(["python", "-m", "dispatcher.cli", "simulate", "--sms-port", "1"]) == \
        "simulators"
    assert role_of(["python", "-m", "bench.stub_providers", "--sms-port", "1"]) == \
        "stub providers"
    assert role_of(["python", "-m", "bench.naive", "--threads", "8"]) == "workers"
    assert role_of(["python", "-m", "dispatcher.cli", "serve"]) is None


def test_engine_and_naive_runs_send_every_reachable_member(tmp_path: Path) -> None:
    members = bench_members(tmp_path, 400, seed=7)
    expected = reachable(members, ("wechat_mass", "sms", "alipay"))
    assert 0 < expected < len(members)  # the base has unreachable members too

    engine = run_flow(members, settings=bench_settings(tmp_path, "engine"), processes=1,
                      threads=2, providers=STUB_PROVIDERS)
    assert engine.issued == len(members)
    assert sum(engine.sent.values()) == engine.reachable == expected
    assert engine.aof == "yes" and engine.deferred_batches == 0
    assert {"workers", "loader", "redis-server", "stub providers", "callbacks",
            "launcher"} <= set(engine.cpu_s)
    assert engine.cpu_s["workers"] > 0 and engine.loaded_s >= engine.wall_s > 0

    naive = run_naive(members.head(60), settings=bench_settings(tmp_path, "naive"), processes=1,
                      threads=2)
    assert naive.issued == 60
    assert sum(naive.sent.values()) == naive.reachable == reachable(
        members.head(60), ("wechat_mass", "sms", "alipay"))
    assert "simulators" in naive.cpu_s and naive.cpu_s["workers"] > 0


def test_flow_rows_state_the_wall_time_alipays_rate_allows() -> None:
    run = FlowRun(members=10, reachable=9, issued=10, sent={"alipay": 3_000, "sms": 6},
                  wall_s=4.0, loaded_s=5.0, cpu_s={"workers": 0.001}, aof="yes",
                  deferred_batches=0)
    rows = {r.metric: r.value for r in flow_rows("s", run, per_s_target=1.0, wall_target=None,
                                                 providers="simulators", alipay_per_s=1_000)}
    assert rows["least wall time Alipay's 1,000 requests/s allow (one request a member)"] == 3.0
    without = flow_rows("s", run, per_s_target=1.0, wall_target=None, providers="simulators")
    assert not any("Alipay" in r.metric for r in without)
