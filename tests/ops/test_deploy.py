"""The deployment files stay true to the code: valid YAML and JSON, and every command they run
is a command line quanpai's own parser accepts (no Docker engine or systemd is needed)."""

from __future__ import annotations

import json
import re
import shlex
from pathlib import Path
from typing import Any

import yaml

from dispatcher.cli import COMMANDS, _parser

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"


def accepts(argv: list[str]) -> str:
    """Parse ``argv`` as quanpai would (SystemExit fails the test); returns the command."""
    args = _parser(argv).parse_args(argv)
    assert args.command in COMMANDS
    return str(args.command)


def compose() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load(
        (DEPLOY / "docker-compose.yml").read_text(encoding="utf-8"))
    return loaded


def test_compose_runs_real_quanpai_commands() -> None:
    services = compose()["services"]
    quanpai = {name: s for name, s in services.items() if s.get("image") == "quanpai:latest"}
    commands = {name: accepts([str(a) for a in s["command"]]) for name, s in quanpai.items()}
    assert {"serve", "worker", "loader", "scheduler", "callbacks", "doctor"} <= set(
        commands.values())
    for service in quanpai.values():
        env = service["environment"]
        assert env["REDIS_URL"] != env["QUANPAI_BROKER_URL"]  # the queues apart
        assert service["build"]["dockerfile"] == "deploy/Dockerfile"
    for name in ("redis-broker", "redis-catalog"):
        assert "noeviction" in services[name]["command"]
    assert "--appendonly" in services["redis-catalog"]["command"]
    assert (DEPLOY / "Dockerfile").read_text().count("ENTRYPOINT [\"quanpai\"]") == 1


def test_prometheus_scrapes_the_ports_the_services_serve() -> None:
    served = set()
    for service in compose()["services"].values():
        command = [str(a) for a in service.get("command", [])]
        if "--metrics-port" in command:
            served.add(command[command.index("--metrics-port") + 1])
    config = yaml.safe_load((DEPLOY / "prometheus.yml").read_text(encoding="utf-8"))
    scraped = {target.rsplit(":", 1)[1] for job in config["scrape_configs"]
               for group in job["static_configs"] for target in group["targets"]}
    assert scraped == served


def test_systemd_units_run_real_quanpai_commands() -> None:
    units = sorted((DEPLOY / "systemd").glob("*.service"))
    assert len(units) >= 4
    seen = set()
    for unit in units:
        lines = [line.split("=", 1)[1] for line in unit.read_text().splitlines()
                 if line.startswith(("ExecStart=", "ExecStartPre="))]
        assert lines, unit
        for line in lines:
            argv = shlex.split(line.lstrip("-"))
            assert argv[0].endswith("/quanpai"), line
            seen.add(accepts(argv[1:]))
        assert "EnvironmentFile=/etc/quanpai/quanpai.env" in unit.read_text()
    assert {"serve", "worker", "loader", "scheduler", "callbacks"} <= seen
    env_keys = {line.split("=", 1)[0] for line in
                (DEPLOY / "systemd" / "quanpai.env").read_text().splitlines()
                if line and not line.startswith("#")}
    assert {"REDIS_URL", "QUANPAI_BROKER_URL", "CLICKHOUSE_URL", "QUANPAI_SECRET"} <= env_keys


def dashboard_metrics() -> set[str]:
    dashboard = json.loads((DEPLOY / "grafana" / "quanpai-dashboard.json").read_text())
    exprs = [t["expr"] for panel in dashboard["panels"] for t in panel["targets"]]
    return set(re.findall(r"\b(?:quanpai|dramatiq)_[a-z_]+", " ".join(exprs)))
