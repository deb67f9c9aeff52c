"""The resilience summary of a run: every time a scenario measured against its budget (the "within N
seconds" of its step), the chaos scenarios' recoveries first, and how each measure moved over earlier runs.

At session end ``publish`` writes ``reports/resilience.md``, attaches it to Allure as a result of its own and
appends the run's figures to ``reports/resilience-history.jsonl`` (the last 60 runs). The nightly Slack
summary names the slowest recoveries from the same figures.

    python -m boutique_suite.reporting.resilience        prints the last run's table
"""

from __future__ import annotations

import json
import statistics
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

from boutique_suite.reporting import evidence
from boutique_suite.run.targets import REPORTS

SUMMARY_FILE = REPORTS / "summary.json"
OUTPUT_FILE = REPORTS / "resilience.md"
HISTORY_FILE = REPORTS / "resilience-history.jsonl"
HISTORY_LIMIT = 60
TREND_RUNS = 5


@dataclass(frozen=True)
class Measure:
    scenario: str
    name: str
    seconds: float
    budget: float | None
    chaos: bool

    @property
    def key(self) -> str:
        return f"{self.scenario} / {self.name}"

    @property
    def share(self) -> float | None:
        """How much of its budget the measure used (1.0: all of it)."""
        return self.seconds / self.budget if self.budget else None

    @property
    def verdict(self) -> str:
        if self.share is None:
            return "no budget"
        return "within budget" if self.share <= 1 else "OVER BUDGET"


def measures(summary: Mapping[str, object]) -> list[Measure]:
    """Every timing of every scenario that ran, chaos scenarios first, then by share of budget used."""
    found = []
    for nodeid, entry in _by_nodeid(summary).items():
        budgets = entry.get("budgets_seconds") or {}
        example = nodeid.partition("[")[2].rstrip("]")  # a Scenario Outline's row
        for name, seconds in (entry.get("timings_seconds") or {}).items():
            found.append(
                Measure(
                    f"{entry['scenario']} [{example}]" if example else str(entry["scenario"]),
                    name,
                    float(seconds),
                    budgets.get(name),
                    "chaos" in (entry.get("tags") or ()),
                )
            )
    return sorted(found, key=lambda m: (not m.chaos, -(m.share or 0), m.key))


def _by_nodeid(summary: Mapping[str, object]) -> Mapping[str, Mapping[str, object]]:
    found = summary.get("scenarios") or {}
    return found if isinstance(found, Mapping) else {}


def scenarios(summary: Mapping[str, object]) -> list[Mapping[str, object]]:
    return list(_by_nodeid(summary).values())


def slowest_recoveries(summary: Mapping[str, object], count: int = 3) -> list[Measure]:
    """The chaos scenarios' measures that used most of their budget."""
    return [m for m in measures(summary) if m.chaos and m.budget][:count]


def over_budget(summary: Mapping[str, object]) -> list[Measure]:
    return [m for m in measures(summary) if m.share is not None and m.share > 1]


def history_record(summary: Mapping[str, object]) -> dict[str, object]:
    return {
        "finished": summary.get("finished"),
        "target": summary.get("target"),
        "seconds": {m.key: m.seconds for m in measures(summary)},
    }


def append_history(summary: Mapping[str, object], path: Path = HISTORY_FILE) -> list[dict]:
    """The run's figures appended to the history file (last HISTORY_LIMIT runs); returns the history."""
    runs = [*read_history(path), history_record(summary)][-HISTORY_LIMIT:]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(run) + "\n" for run in runs), encoding="utf-8")
    return runs


def read_history(path: Path = HISTORY_FILE) -> list[dict]:
    if not path.is_file():
        return []
    runs = []
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            runs.append(json.loads(line))
        except json.JSONDecodeError:
            continue  # a line cut short by a killed run: the others still count
    return runs


def trend(history: Iterable[Mapping[str, object]], key: str, runs: int = TREND_RUNS) -> str:
    """The measure over the last ``runs`` runs that had it, oldest first, and their median."""
    values = [float(r["seconds"][key]) for r in history if key in (r.get("seconds") or {})][-runs:]
    if len(values) < 2:
        return "first run"
    shown = " → ".join(f"{v:.1f}" for v in values)
    return f"{shown} (median {statistics.median(values):.1f})"


def markdown(summary: Mapping[str, object], history: list[dict]) -> str:
    found = measures(summary)
    rows = [
        "# Resilience of the run",
        "",
        f"Target `{summary.get('target')}`, finished {summary.get('finished')}. Each time a scenario"
        " measured, against the budget its step allows; `share` is the part of the budget used. The trend"
        f" is the same measure over the last {TREND_RUNS} runs (seconds).",
        "",
        f"- measures: {len(found)}, of chaos scenarios: {sum(m.chaos for m in found)}",
        f"- over budget: {len(over_budget(summary))}",
        "",
        "| scenario | measure | seconds | budget | share | verdict | trend |",
        "|---|---|---:|---:|---:|---|---|",
    ]
    for m in found:
        budget = f"{m.budget:g}" if m.budget else "-"
        share = f"{m.share:.0%}" if m.share is not None else "-"
        chaos = " (chaos)" if m.chaos else ""
        rows.append(
            f"| {m.scenario}{chaos} | {m.name} | {m.seconds:.1f} | {budget} | {share} | {m.verdict} "
            f"| {trend(history, m.key)} |"
        )
    return "\n".join(rows) + "\n"


def publish(
    summary_path: Path = SUMMARY_FILE,
    output: Path = OUTPUT_FILE,
    history_path: Path = HISTORY_FILE,
    pages: Path | None = None,
) -> Path:
    summary = json.loads(summary_path.read_text(encoding="utf-8"))
    history = append_history(summary, history_path)
    text = markdown(summary, history)
    output.write_text(text, encoding="utf-8")
    evidence.publish_run_page("resilience.md", text, pages)
    return output


def main() -> int:
    if not SUMMARY_FILE.is_file():
        print(f"no {SUMMARY_FILE} yet: run the suite first")
        return 1
    summary = json.loads(SUMMARY_FILE.read_text(encoding="utf-8"))
    print(markdown(summary, read_history()))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
