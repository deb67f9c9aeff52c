"""Traceability that counts execution: for each item of the validation plan, its scenarios exist, every
step of them is bound, and what the last run (reports/summary.json) says about them.

``python -m boutique_suite.reporting.traceability`` prints the counts per column and writes
reports/traceability.md.
"""

from __future__ import annotations

import importlib
import json
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import yaml
from pytest_bdd.parser import FeatureParser

from boutique_suite.reporting import evidence
from boutique_suite.run.targets import REPORTS, ROOT

FEATURES_DIR = ROOT / "features"
PLAN_FILE = FEATURES_DIR / "plan.yaml"
TABLE_FILE = ROOT / "docs" / "traceability.md"
TABLE_HEADER = "| id | item | feature | scenario |"
SUMMARY_FILE = REPORTS / "summary.json"
OUTPUT_FILE = REPORTS / "traceability.md"
STEP_MODULES = (
    "steps.common_steps",
    "steps.platform_steps",
    "steps.host_steps",
    "steps.cluster_steps",
    "steps.chaos_steps",
    "steps.argocd_steps",
    "steps.gitops_steps",
    "steps.rollout_steps",
    "steps.cicd_steps",
    "steps.alert_steps",
    "steps.alert_fault_steps",
    "steps.advanced_steps",
    "steps.screen_steps",
)
RUN_COLUMNS = ("passed real", "passed simulated", "static", "skipped", "failed", "not run")


@dataclass(frozen=True)
class PlanItem:
    id: str
    item: str
    merged_into: str | None = None
    note: str = ""


@dataclass(frozen=True)
class TraceRow:
    id: str
    item: str
    feature: str
    scenario: str


@dataclass(frozen=True)
class ScenarioRef:
    feature: str
    name: str
    tags: frozenset[str]
    """Tags of the scenario together with those of its feature (and rule, if any)."""
    examples_tags: tuple[frozenset[str], ...]
    steps: tuple[str, ...]
    """Step texts including the background's, outline placeholders filled from the first example row."""
    step_types: tuple[str, ...] = ()

    @property
    def key(self) -> str:
        return f"{self.feature}::{self.name}"

    def tag_sets(self) -> list[frozenset[str]]:
        """Every set of tags a generated test can carry: one per Examples block, else the scenario's."""
        return [self.tags | extra for extra in self.examples_tags] or [self.tags]


def load_plan(path: Path = PLAN_FILE) -> list[PlanItem]:
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    if not isinstance(data, list):
        raise ValueError(f"{path}: expected a list of {{id, item}} mappings, got {type(data).__name__}")
    items: list[PlanItem] = []
    for index, entry in enumerate(data):
        if not isinstance(entry, dict) or not {"id", "item"} <= set(entry) <= {
            "id",
            "item",
            "merged_into",
            "note",
        }:
            raise ValueError(
                f"{path}: entry {index} needs id and item (merged_into, note optional): {entry!r}"
            )
        if not all(isinstance(entry[key], str) and entry[key].strip() for key in ("id", "item")):
            raise ValueError(f"{path}: entry {index} needs a non-empty id and item: {entry!r}")
        if "merged_into" in entry and not entry.get("note"):
            raise ValueError(f"{path}: entry {index} is merged into {entry['merged_into']} without a note")
        items.append(PlanItem(entry["id"], entry["item"], entry.get("merged_into"), entry.get("note", "")))
    return items


def load_table(path: Path = TABLE_FILE) -> list[TraceRow]:
    lines = path.read_text(encoding="utf-8").splitlines()
    try:
        start = next(i for i, line in enumerate(lines) if line.strip() == TABLE_HEADER)
    except StopIteration:
        raise ValueError(f"{path}: no table with the header {TABLE_HEADER!r}") from None
    rows: list[TraceRow] = []
    for line in lines[start + 2 :]:
        if not line.strip().startswith("|"):
            break
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        if len(cells) != 4:
            raise ValueError(f"{path}: a row needs 4 cells, got {len(cells)}: {line!r}")
        rows.append(TraceRow(*cells))
    return rows


def _filled(text: str, template) -> str:  # type: ignore[no-untyped-def]
    if "<" not in text or not template.examples or not template.examples[0].examples:
        return text
    header, first = template.examples[0].example_params, template.examples[0].examples[0]
    for key, value in zip(header, first, strict=False):
        text = text.replace(f"<{key}>", value)
    return text


def load_scenarios(features_dir: Path = FEATURES_DIR) -> list[ScenarioRef]:
    scenarios: list[ScenarioRef] = []
    for path in sorted(features_dir.glob("*.feature")):
        feature = FeatureParser(basedir=str(features_dir), filename=path.name).parse()
        for template in feature.scenarios.values():
            rule_tags = template.rule.tags if template.rule is not None else set()
            scenarios.append(
                ScenarioRef(
                    feature=path.name,
                    name=template.name,
                    tags=frozenset(feature.tags | rule_tags | template.tags),
                    examples_tags=tuple(frozenset(examples.tags) for examples in template.examples),
                    steps=tuple(_filled(step.name, template) for step in template.steps),
                    step_types=tuple(step.type for step in template.steps),
                )
            )
    return scenarios


@dataclass(frozen=True)
class Binding:
    kind: str
    parser: object
    func: object

    def matches(self, kind: str, text: str) -> bool:
        return kind == self.kind and self.parser.is_matching(text)  # type: ignore[attr-defined]


def bindings(modules: Iterable[str] = STEP_MODULES) -> list[Binding]:
    """Every step binding of the step modules (pytest-bdd registers each as a pytestbdd_stepdef_ fixture)."""
    found = []
    for module_name in modules:
        for name, value in vars(importlib.import_module(module_name)).items():
            if name.startswith("pytestbdd_stepdef_"):
                context = value._fixture_function()
                found.append(Binding(context.type, context.parser, context.step_func))
    return found


def unbound(scenario: ScenarioRef, known: Iterable[Binding]) -> list[str]:
    known = list(known)
    return [
        f"{kind} {text}"
        for kind, text in zip(scenario.step_types, scenario.steps, strict=True)
        if not any(b.matches(kind, text) for b in known)
    ]


def load_summary(path: Path = SUMMARY_FILE) -> dict[str, dict]:
    """Entries of the last run's summary by scenario name (an outline has one entry per example)."""
    if not path.is_file():
        return {}
    by_name: dict[str, list[dict]] = {}
    for entry in json.loads(path.read_text()).get("scenarios", {}).values():
        by_name.setdefault(entry["scenario"], []).append(entry)
    return by_name


def run_state(entries: Iterable[Mapping[str, object]]) -> tuple[str, str]:
    """(column, why) of one or more runs of a scenario: the weakest wins."""
    entries = list(entries)
    if not entries:
        return "not run", ""
    states = []
    for entry in entries:
        outcome = entry.get("outcome")
        if outcome == "failed":
            states.append(("failed", ""))
        elif outcome == "skipped":
            states.append(("skipped", str(entry.get("reason", ""))))
        elif entry.get("execution") == "real":
            states.append(("passed real", ""))
        elif entry.get("execution") == "static":
            states.append(("static", ""))
        else:
            states.append(("passed simulated", "; ".join(entry.get("simulated") or [])))  # type: ignore[arg-type]
    rank = ("failed", "skipped", "passed simulated", "static", "passed real")
    return min(states, key=lambda state: rank.index(state[0]))


@dataclass
class ItemTrace:
    item: PlanItem
    scenarios: list[str] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)
    unbound: list[str] = field(default_factory=list)
    run: str = "not run"
    why: str = ""

    @property
    def exists(self) -> bool:
        return bool(self.scenarios) and not self.missing


def trace(
    plan: Iterable[PlanItem],
    table: Iterable[TraceRow],
    scenarios: Iterable[ScenarioRef],
    known: Iterable[Binding],
    summary: Mapping[str, list[dict]],
) -> list[ItemTrace]:
    """One ItemTrace per plan item that is not merged into another."""
    by_key = {(s.feature, s.name): s for s in scenarios}
    known = list(known)
    rows: dict[str, list[TraceRow]] = {}
    for row in table:
        rows.setdefault(row.id, []).append(row)
    result = []
    for item in plan:
        if item.merged_into:
            continue
        found = ItemTrace(item)
        entries = []
        for row in rows.get(item.id, []):
            scenario = by_key.get((row.feature, row.scenario))
            if scenario is None:
                found.missing.append(f"no scenario {row.scenario!r} in {row.feature}")
                continue
            found.scenarios.append(scenario.name)
            found.unbound += unbound(scenario, known)
            entries += summary.get(scenario.name, [])
        if not rows.get(item.id):
            found.missing.append(f"no row in {TABLE_FILE.name}")
        found.run, found.why = run_state(entries) if found.scenarios else ("not run", "")
        result.append(found)
    return result


def current() -> list[ItemTrace]:
    return trace(load_plan(), load_table(), load_scenarios(), bindings(), load_summary())


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def markdown(traces: Iterable[ItemTrace]) -> str:
    traces = list(traces)
    lines = [
        "# Traceability: validation plan → scenarios → last run",
        "",
        "Made from features/plan.yaml, docs/traceability.md, the step bindings and reports/summary.json.",
        "",
        "| id | item | scenarios | exist | steps bound | last run |",
        "|---|---|---|---|---|---|",
    ]
    for t in traces:
        exist = "yes" if t.exists else "no: " + "; ".join(t.missing)
        bound = "yes" if not t.unbound else f"no: {len(t.unbound)} unbound ({t.unbound[0]})"
        run = f"{t.run} ({t.why})" if t.why else t.run
        cells = (t.item.id, t.item.item, "; ".join(t.scenarios) or "-", exist, bound, run)
        lines.append("| " + " | ".join(_cell(c) for c in cells) + " |")
    lines += ["", "Counts: " + ", ".join(f"{k}: {v}" for k, v in counts(traces).items()), ""]
    return "\n".join(lines)


def counts(traces: Iterable[ItemTrace]) -> dict[str, int]:
    traces = list(traces)
    tally = Counter(t.run for t in traces)
    return {
        "items": len(traces),
        "scenario exists": sum(t.exists for t in traces),
        "no scenario": sum(not t.exists for t in traces),
        "all steps bound": sum(t.exists and not t.unbound for t in traces),
        "unbound steps": sum(bool(t.unbound) for t in traces),
        **{column: tally.get(column, 0) for column in RUN_COLUMNS},
    }


def write(traces: Iterable[ItemTrace], path: Path = OUTPUT_FILE) -> Path:
    path.parent.mkdir(exist_ok=True)
    path.write_text(markdown(traces), encoding="utf-8")
    return path


def attach_to_allure(text: str, pages: Path | None = None) -> Path:
    """The table as a page of the run in the report (reports/run-pages/traceability.md)."""
    return evidence.publish_run_page("traceability.md", text, pages)


def publish() -> Path:
    """Session end: write reports/traceability.md and attach it to the Allure results."""
    traces = current()
    path = write(traces)
    attach_to_allure(path.read_text(encoding="utf-8"))
    return path


def main() -> int:
    traces = current()
    path = write(traces)
    for column, number in counts(traces).items():
        print(f"{column:>18}: {number}")
    print(f"table: {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
