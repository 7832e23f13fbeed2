"""A store PC installs only ``quanpai[printer]``: a fresh virtualenv gets the agent without
pandas, scikit-learn, chDB, the Redis client or Dramatiq; the agent's commands work and every
other command says in one line which extra it needs."""

from __future__ import annotations

import shutil
import subprocess
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_printer_extra_installs_alone(tmp_path: Path) -> None:
    source = tmp_path / "source"  # a copy: building writes build/ and *.egg-info beside it
    shutil.copytree(ROOT, source, ignore=shutil.ignore_patterns(
        ".venv", "var", "build", "*.egg-info", ".git", "__pycache__", ".*_cache"))
    env_dir = tmp_path / "store-pc"
    venv.create(env_dir, with_pip=True)
    python = env_dir / "bin" / "python"
    installed = subprocess.run(
        [str(python), "-m", "pip", "install", "-q", "--disable-pip-version-check",
         f"{source}[printer]"], capture_output=True, text=True, timeout=900)
    assert installed.returncode == 0, installed.stderr[-3000:]
    probe = subprocess.run(
        [str(python), "-c", "import importlib.util as u; print(' '.join(m for m in "
         "('pandas', 'sklearn', 'chdb', 'redis', 'dramatiq', 'escpos', 'aiohttp', 'PIL') "
         "if u.find_spec(m)))"], capture_output=True, text=True, timeout=60, cwd=tmp_path)
    assert probe.stdout.split() == ["escpos", "aiohttp", "PIL"], probe.stdout
    quanpai = env_dir / "bin" / "quanpai"
    helped = subprocess.run([str(quanpai), "printer-agent", "--help"], capture_output=True,
                            text=True, timeout=60, cwd=tmp_path)
    assert helped.returncode == 0 and "run" in helped.stdout and "preview" in helped.stdout
    job = tmp_path / "job.json"
    job.write_text('{"job_id": "slip:t1-1", "kind": "redemption_slip", "store_id": "S1", '
                   '"data": {"redemption_id": "t1-1", "code": "0001-0000-0ABC-DEFG", '
                   '"order_id": "R1", "discount_fen": 500, "amount_fen": 3000, '
                   '"redeemed_at": "2026-12-03T12:00:00+08:00"}}', encoding="utf-8")
    previewed = subprocess.run([str(quanpai), "printer-agent", "preview", str(job), "--png",
                                str(tmp_path / "slip.png")], capture_output=True, text=True,
                               timeout=60, cwd=tmp_path)
    assert previewed.returncode == 0, previewed.stderr
    assert (tmp_path / "slip.png").stat().st_size > 1000
    for command, extra in (("serve", "server"), ("segment", "segmentation"), ("roi", "analytics"),
                           ("worker", "server"), ("campaign", "all")):
        other = subprocess.run([str(quanpai), command], capture_output=True, text=True,
                               timeout=60, cwd=tmp_path)
        lines = other.stderr.strip().splitlines()
        assert other.returncode == 2 and len(lines) == 1, (command, other.stderr)
        assert f"quanpai[{extra}]" in lines[0], lines[0]
