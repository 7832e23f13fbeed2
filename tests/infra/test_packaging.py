"""The store printer agent installs small: ``quanpai[printer]`` must not pull in pandas,
scikit-learn or chDB, directly or through any dependency."""

from __future__ import annotations

import re
import tomllib
from importlib import metadata
from pathlib import Path

HEAVY = {"pandas", "scikit-learn", "chdb", "clickhouse-driver", "pyarrow", "dramatiq"}


def _name(requirement: str) -> str:
    return re.split(r"[\s\[<>=!~;]", requirement, maxsplit=1)[0].lower().replace("_", "-")


def _closure(names: list[str]) -> set[str]:
    seen: set[str] = set()
    todo = list(names)
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        seen.add(name)
        try:
            requires = metadata.requires(name) or []
        except metadata.PackageNotFoundError:
            continue
        todo.extend(_name(r) for r in requires if "extra ==" not in r)
    return seen


def test_printer_extra_stays_small() -> None:
    project = tomllib.loads(Path("pyproject.toml").read_text())["project"]
    printer = project["optional-dependencies"]["printer"]
    direct = [_name(r) for r in project["dependencies"] + printer]
    closure = _closure(direct)
    assert "python-escpos" in closure
    assert not closure & HEAVY, closure & HEAVY


def test_all_extra_has_the_heavy_parts() -> None:
    extras = tomllib.loads(Path("pyproject.toml").read_text())["project"]["optional-dependencies"]
    parts = ("server", "analytics", "segmentation")
    everything = {_name(r) for name in parts for r in extras[name]}
    assert {"pandas", "scikit-learn", "chdb", "dramatiq"} <= everything
