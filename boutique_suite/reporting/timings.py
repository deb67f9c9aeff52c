"""Where a run's time goes: each layer's ensure, each scenario and test split into setup / call / teardown
(a scenario also names the steps it spent longest in: what it waited on), each module of the suite's own
tests in total. Written at session end as the run page ``timings.md`` (and
``reports/timings.json``); ``python -m boutique_suite.reporting.timings [N]`` prints the N slowest lines (CI:
10).
"""

from __future__ import annotations

import json
import sys
import time
from collections import defaultdict
from collections.abc import Mapping
from pathlib import Path

from boutique_suite.reporting import evidence
from boutique_suite.run import targets

REPORTS = targets.REPORTS
_PHASES: dict[str, dict[str, float]] = {}  # nodeid -> {setup|call|teardown: seconds}


_STEPS: dict[str, list[tuple[str, float]]] = {}  # nodeid -> [(step, seconds)] in the order they ran
_STEP_STARTED: dict[str, float] = {}
LONGEST_STEPS = 3  # named per scenario
STEP_WORTH_NAMING = 1.0  # seconds


def record(nodeid: str, when: str, seconds: float) -> None:
    _PHASES.setdefault(nodeid, {})[when] = round(seconds, 2)


def step_started(nodeid: str) -> None:
    _STEP_STARTED[nodeid] = time.monotonic()


def step_ended(nodeid: str, step: str) -> None:
    """The step of ``nodeid`` that started last has ended (passed or failed)."""
    if (started := _STEP_STARTED.pop(nodeid, None)) is not None:
        _STEPS.setdefault(nodeid, []).append((step, round(time.monotonic() - started, 1)))


def longest_steps(steps: list[tuple[str, float]]) -> str:
    """The steps a scenario spent longest in, slowest first (' · longest steps: 24.6 s And ...; ...')."""
    named = sorted((s for s in steps if s[1] >= STEP_WORTH_NAMING), key=lambda s: -s[1])[:LONGEST_STEPS]
    if not named:
        return ""
    text = "; ".join(f"{seconds:.1f} s {step[:90]}" for step, seconds in named).replace("|", "/")
    return f" · longest steps: {text}"


def rows(
    tests: Mapping[str, Mapping[str, float]],
    layers: Mapping[str, float],
    steps: Mapping[str, list[tuple[str, float]]] | None = None,
) -> list[tuple[str, str, float, str]]:
    """(kind, name, seconds, split) for every layer, test and tests/ module, slowest first."""
    found = [("layer", name, round(seconds, 2), "ensure") for name, seconds in layers.items()]
    modules: dict[str, float] = defaultdict(float)
    for nodeid, phases in tests.items():
        total = sum(phases.values())
        split = " / ".join(f"{when} {phases.get(when, 0):.1f}" for when in ("setup", "call", "teardown"))
        split += longest_steps((steps or {}).get(nodeid, []))
        kind = "scenario" if nodeid.startswith("steps/") else "test"
        found.append((kind, nodeid, round(total, 2), split))
        if kind == "test":
            modules[nodeid.split("::")[0]] += total
    found += [("module", name, round(seconds, 2), "all its tests") for name, seconds in modules.items()]
    return sorted(found, key=lambda row: -row[2])


def markdown(table: list[tuple[str, str, float, str]]) -> str:
    lines = ["# Where the run's time went", "", "| kind | what | seconds | split |", "|---|---|---|---|"]
    lines += [f"| {kind} | {name} | {seconds:.1f} | {split} |" for kind, name, seconds, split in table]
    return "\n".join(lines) + "\n"


def publish(layers: Mapping[str, float], reports: Path = REPORTS) -> Path | None:
    """reports/timings.json and the run page timings.md, from what this session recorded."""
    if not _PHASES and not layers:
        return None
    return write(rows(_PHASES, layers, _STEPS), reports)


def write(table: list[tuple[str, str, float, str]], reports: Path = REPORTS) -> Path:
    """``table`` as reports/timings.json and the run page timings.md."""
    reports.mkdir(parents=True, exist_ok=True)
    (reports / "timings.json").write_text(json.dumps(table, indent=1), encoding="utf-8")
    return evidence.publish_run_page("timings.md", markdown(table), reports / evidence.RUN_PAGES)


def read(reports: Path = REPORTS) -> list[tuple[str, str, float, str]] | None:
    """The table a session wrote in ``reports``; None when it wrote none."""
    try:
        return [tuple(row) for row in json.loads((reports / "timings.json").read_text(encoding="utf-8"))]
    except (OSError, json.JSONDecodeError):
        return None


def slowest(count: int, reports: Path = REPORTS) -> str:
    table = read(reports)
    if table is None:
        return f"no {reports / 'timings.json'}: the run ended before its session finished"
    lines = [f"The {count} slowest lines of the run ({reports / evidence.RUN_PAGES / 'timings.md'}):"]
    lines += [f"{seconds:8.1f} s  {kind:8} {name}  ({split})" for kind, name, seconds, split in table[:count]]
    return "\n".join(lines)


if __name__ == "__main__":
    print(slowest(int(sys.argv[1]) if len(sys.argv) > 1 else 10))
