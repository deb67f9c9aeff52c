"""The report's first page: what the run proved, per phase, before anyone opens a scenario.

At session end ``write`` turns reports/summary.json (and reports/mutants.json, from the last
``./run mutants``) into reports/overview.json: one line per phase and one for the whole run, counting real,
simulated and static passes, skips, failures and scenarios failed by a broken platform, and the mutation
score. allurerc.mjs shows these as the report's variables on its overview page.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from boutique_suite.run import targets

REPORTS = targets.REPORTS
COLUMNS = ("real", "simulated", "static", "skipped", "failed", "broken platform")


def column(entry: Mapping[str, Any]) -> str:
    """Which count a scenario's summary entry adds to."""
    outcome, execution = entry.get("outcome"), entry.get("execution")
    if execution == "broken-platform":
        return "broken platform"
    if outcome == "passed":
        return str(execution)
    return "skipped" if outcome == "skipped" else "failed"


def phase_of(entry: Mapping[str, Any]) -> str:
    phases = sorted(t for t in entry.get("tags") or [] if t.startswith("phase"))
    return f"phase {phases[0][5:]}" if phases else "no phase"


def line(counts: Counter[str]) -> str:
    return " · ".join(f"{counts[c]} {c}" for c in COLUMNS)


def mutation_score(mutants: list[Mapping[str, Any]] | None) -> str:
    if not mutants:
        return "not measured in this report (./run mutants)"
    caught = sum(bool(m.get("caught")) for m in mutants)
    escaped = [str(m["mutation"]) for m in mutants if not m.get("caught")]
    return f"{caught}/{len(mutants)} caught" + (f"; escaped: {', '.join(escaped)}" if escaped else "")


def variables(summary: Mapping[str, Any], mutants: list[Mapping[str, Any]] | None = None) -> dict[str, str]:
    """The first page's lines: the target, the whole run, each phase, the broken platform, mutation score."""
    total: Counter[str] = Counter()
    per_phase: dict[str, Counter[str]] = {}
    for entry in (summary.get("scenarios") or {}).values():
        which = column(entry)
        total[which] += 1
        per_phase.setdefault(phase_of(entry), Counter())[which] += 1
    found = {"target": str(summary.get("target")), "scenarios": line(total)}
    found |= {name: line(per_phase[name]) for name in sorted(per_phase)}
    broken = summary.get("broken") or []
    found["platform"] = f"broken: {broken[0]['cause']}" if broken else "no layer found broken"
    found["mutation score"] = mutation_score(mutants)
    return found


def write(reports: Path = REPORTS) -> Path | None:
    try:
        summary = json.loads((reports / "summary.json").read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError):
        return None
    try:
        mutants = json.loads((reports / "mutants.json").read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError):
        mutants = None
    path = reports / "overview.json"
    path.write_text(json.dumps(variables(summary, mutants), indent=2), encoding="utf-8")
    return path
