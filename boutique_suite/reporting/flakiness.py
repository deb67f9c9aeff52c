"""Flakiness over runs: each scenario's pass rate and flip rate over its last runs, the flaky ones marked.

The runs are the report's own history (``reports/history.jsonl``, one line per generated report, which the
Allure generator appends) and this run's summary. A scenario that both passed and failed in its window with a
flip between consecutive runs is flaky: a bug to fix with a wait on the real condition, never a retry.
Skipped runs count neither way. Written at session end as the run page ``flakiness.md``.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from boutique_suite.reporting import evidence
from boutique_suite.run import targets

WINDOW = 10
HISTORY = targets.REPORTS / "history.jsonl"


@dataclass(frozen=True)
class Record:
    scenario: str
    outcomes: tuple[str, ...]  # "passed" / "failed", oldest first, skipped runs left out

    @property
    def pass_rate(self) -> float:
        return self.outcomes.count("passed") / len(self.outcomes)

    @property
    def flips(self) -> int:
        return sum(a != b for a, b in zip(self.outcomes, self.outcomes[1:], strict=False))

    @property
    def flip_rate(self) -> float:
        return self.flips / (len(self.outcomes) - 1) if len(self.outcomes) > 1 else 0.0

    @property
    def flaky(self) -> bool:
        return self.flips > 0


def _verdict(status: str) -> str | None:
    if status == "passed":
        return "passed"
    return "failed" if status in ("failed", "broken", "error") else None


def history_runs(path: Path = HISTORY) -> list[dict[str, str]]:
    """Per generated report, oldest first: scenario name -> passed / failed."""
    runs = []
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except OSError:
        return []
    for line in lines:
        try:
            point = json.loads(line)
        except json.JSONDecodeError:
            continue
        results = (point.get("testResults") or {}).values()
        runs.append(_worst((str(r.get("name")), str(r.get("status"))) for r in results))
    return runs


def summary_run(summary: Mapping[str, Any]) -> dict[str, str]:
    entries = (summary.get("scenarios") or {}).values()
    return _worst((str(e["scenario"]), str(e.get("outcome"))) for e in entries)


def _worst(results: Iterable[tuple[str, str]]) -> dict[str, str]:
    """name -> verdict; a Scenario Outline's examples share a name, and any failed example fails it."""
    run: dict[str, str] = {}
    for name, status in results:
        verdict = _verdict(status)
        if verdict and run.get(name) != "failed":
            run[name] = verdict
    return run


def records(runs: Iterable[Mapping[str, str]], window: int = WINDOW) -> list[Record]:
    """Each scenario's last ``window`` verdicts, flaky first, then by pass rate."""
    seen: dict[str, list[str]] = {}
    for run in runs:
        for name, verdict in run.items():
            seen.setdefault(name, []).append(verdict)
    found = [Record(name, tuple(v[-window:])) for name, v in seen.items()]
    return sorted(found, key=lambda r: (not r.flaky, r.pass_rate, r.scenario))


def markdown(found: list[Record]) -> str:
    flaky = [r for r in found if r.flaky]
    lines = [
        f"# Flakiness over the last {WINDOW} runs",
        "",
        f"{len(flaky)} flaky of {len(found)} scenarios with a verdict.",
        "",
        "| scenario | runs | pass rate | flip rate | flaky | outcomes (oldest first) |",
        "|---|---|---|---|---|---|",
    ]
    for r in found:
        trail = "".join("P" if o == "passed" else "F" for o in r.outcomes)
        mark = "**flaky**" if r.flaky else ""
        lines.append(
            f"| {r.scenario} | {len(r.outcomes)} | {r.pass_rate:.0%} | {r.flip_rate:.0%} | {mark} | {trail} |"
        )
    return "\n".join(lines) + "\n"


def publish(summary_path: Path = targets.REPORTS / "summary.json", history: Path = HISTORY) -> Path | None:
    try:
        summary = json.loads(summary_path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError):
        return None
    found = records([*history_runs(history), summary_run(summary)])
    return evidence.publish_run_page(
        "flakiness.md", markdown(found), summary_path.parent / evidence.RUN_PAGES
    )
