"""``make bench``'s runner: a scenario runs in a process of its own and its rows reach the
report."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path


def test_each_scenario_runs_in_its_own_process_and_reaches_the_report(tmp_path: Path) -> None:
    done = subprocess.run([sys.executable, "-m", "bench.run", "--size", "quick", "--only",
                           "channels_sms", "--out", str(tmp_path)],
                          capture_output=True, text=True, timeout=600, check=False)
    assert done.returncode == 0, done.stderr
    rows = json.loads((tmp_path / "latest.json").read_text())
    assert rows and {row["scenario"] for row in rows} == {"channels_sms"}
    assert all(row["measured_at"] for row in rows)
    assert "channels_sms" in (tmp_path / "latest.md").read_text()
    # the child of one scenario writes its rows where it is told, and nothing else
    child = tmp_path / "rows.json"
    one = subprocess.run([sys.executable, "-m", "bench.run", "--size", "quick", "--scenario",
                          "channels_sms", "--rows", str(child)],
                         capture_output=True, text=True, timeout=600, check=False)
    assert one.returncode == 0, one.stderr
    assert {row["scenario"] for row in json.loads(child.read_text())} == {"channels_sms"}
