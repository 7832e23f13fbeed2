"""Hosts on one machine for the tests: Linux network namespaces joined by veth pairs.

A ``services`` namespace holds a bridge and the shared services (Redis, the simulators); each
other namespace is a host with one veth into that bridge; the test's own namespace gets one too,
so it reaches every host without routing through the machine's firewall. Everything is named
after the creating process, and ``close`` (also run for leftovers of dead runs) removes it:
deleting a namespace kills nothing by itself, so its processes are killed first.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

PREFIX = "qpt-"


def ip(*args: str) -> str:
    done = subprocess.run(["ip", *args], capture_output=True, text=True, timeout=30)
    if done.returncode != 0:
        raise RuntimeError(f"ip {' '.join(args)}: {done.stderr.strip()}")
    return done.stdout


def pids_in(namespace: str) -> list[int]:
    try:
        return [int(p) for p in ip("netns", "pids", namespace).split()]
    except RuntimeError:
        return []


def kill_namespace(namespace: str) -> None:
    """SIGKILL every process of ``namespace`` (a host losing power) and wait for them."""
    for _ in range(50):
        pids = pids_in(namespace)
        if not pids:
            return
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        time.sleep(0.1)


def remove_leftovers() -> None:
    """Namespaces of earlier runs whose process is gone (a run killed before its cleanup)."""
    for line in ip("netns", "list").splitlines():
        name = line.split()[0] if line.strip() else ""
        if name.startswith(PREFIX):
            owner = name[len(PREFIX):].split("-", 1)[0]
            if owner.isdigit() and not Path(f"/proc/{owner}").exists():
                kill_namespace(name)
                subprocess.run(["ip", "netns", "del", name], capture_output=True)


@dataclass
class NetLab:
    """``hosts`` namespaces plus ``services``, on 10.250.N.0/24."""

    hosts: Sequence[str]
    tag: str = field(default_factory=lambda: str(os.getpid()))
    created: list[str] = field(default_factory=list)
    processes: list[subprocess.Popen[bytes]] = field(default_factory=list)
    links: list[str] = field(default_factory=list)  # veths created here (deleted on close)

    def __post_init__(self) -> None:
        self.subnet = f"10.250.{os.getpid() % 250}"
        self.addresses = {"services": f"{self.subnet}.1",
                          **{h: f"{self.subnet}.{11 + i}" for i, h in enumerate(self.hosts)}}
        self.local_address = f"{self.subnet}.100"

    def namespace(self, host: str) -> str:
        return f"{PREFIX}{self.tag}-{host}"

    def _veth(self, short: str) -> tuple[str, str]:
        base = f"q{int(self.tag) % 100000}{short}"
        return base + "o", base + "i"  # outside end (host or here), inside end (bridge port)

    def open(self) -> NetLab:
        remove_leftovers()
        services = self.namespace("services")
        ip("netns", "add", services)
        self.created.append(services)
        run = ["ip", "netns", "exec", services, "ip"]
        subprocess.run([*run, "link", "set", "lo", "up"], check=True)
        subprocess.run([*run, "link", "add", "br0", "type", "bridge"], check=True)
        subprocess.run([*run, "addr", "add", f"{self.addresses['services']}/24", "dev", "br0"],
                       check=True)
        subprocess.run([*run, "link", "set", "br0", "up"], check=True)
        for i, host in enumerate(self.hosts):
            name = self.namespace(host)
            ip("netns", "add", name)
            self.created.append(name)
            outside, inside = self._veth(str(i))
            self.links.append(outside)
            ip("link", "add", outside, "type", "veth", "peer", "name", inside)
            ip("link", "set", inside, "netns", services)
            ip("link", "set", outside, "netns", name)
            self._attach(services, inside)
            host_ip = ["ip", "netns", "exec", name, "ip"]
            subprocess.run([*host_ip, "link", "set", "lo", "up"], check=True)
            subprocess.run([*host_ip, "addr", "add", f"{self.addresses[host]}/24", "dev",
                            outside], check=True)
            subprocess.run([*host_ip, "link", "set", outside, "up"], check=True)
        # This test's own namespace joins the bridge too (it launches and checks).
        outside, inside = self._veth("t")
        self.links.append(outside)
        ip("link", "add", outside, "type", "veth", "peer", "name", inside)
        ip("link", "set", inside, "netns", services)
        self._attach(services, inside)
        ip("addr", "add", f"{self.local_address}/24", "dev", outside)
        ip("link", "set", outside, "up")
        return self

    @staticmethod
    def _attach(services: str, inside: str) -> None:
        run = ["ip", "netns", "exec", services, "ip", "link", "set", inside]
        subprocess.run([*run, "master", "br0"], check=True)
        subprocess.run([*run, "up"], check=True)

    def spawn(self, host: str, argv: Sequence[str], *, env: dict[str, str],
              log: Path) -> subprocess.Popen[bytes]:
        """Start ``argv`` on ``host`` (a namespace), output to ``log``."""
        process = subprocess.Popen(["ip", "netns", "exec", self.namespace(host), *argv],
                                   env=env, stdout=log.open("ab"), stderr=subprocess.STDOUT)
        self.processes.append(process)
        return process

    def close(self) -> None:
        """Kill every process of every namespace, then remove the namespaces and the veth of
        this namespace (a veth pair goes with either end)."""
        for name in reversed(self.created):
            kill_namespace(name)
        for process in self.processes:
            if process.poll() is None:
                process.kill()
            process.wait()
        for name in reversed(self.created):
            subprocess.run(["ip", "netns", "del", name], capture_output=True)
        for link in self.links:  # those still here (a host's end moved away went with it)
            subprocess.run(["ip", "link", "del", link], capture_output=True)
        self.created.clear()
        self.links.clear()
