"""The flow benchmark's instrument on a small base: a campaign through the engine (stub
providers) and the naive way (simulators) each reach every reachable member, and the CPU of
each process is found under its role."""

from __future__ import annotations

from pathlib import Path

from bench.flow_run import STUB_PROVIDERS, reachable, role_of, run_flow, run_naive
from bench.scenarios.flow import bench_members, bench_settings


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
