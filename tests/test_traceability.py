"""Traceability of the validation plan and the rules every feature file follows.

features/plan.yaml lists the 43 items of the plan; docs/traceability.md maps each item to the scenario
that proves it. These tests fail when an item has no scenario, a row names a scenario that does not
exist, or a scenario breaks the tag rules the markers and the nightly selection rely on.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml
from pytest_bdd.parser import FeatureParser

ROOT = Path(__file__).resolve().parent.parent
FEATURES_DIR = ROOT / "features"
PLAN_FILE = FEATURES_DIR / "plan.yaml"
TABLE_FILE = ROOT / "docs" / "traceability.md"
TABLE_HEADER = "| id | item | feature | scenario |"

PHASE_TAGS = frozenset(f"phase{n}" for n in range(8))
THEME_TAGS = frozenset({"selfheal", "drift", "rollout", "alerts", "hpa", "chaos", "destructive", "nightly"})
ALLOWED_TAGS = PHASE_TAGS | THEME_TAGS | {"onprem_only"}

EXPECTED_IDS: tuple[str, ...] = (
    *(f"P0.{n}" for n in range(1, 4)),
    *(f"P1.{n}" for n in range(1, 6)),
    *(f"P2.{n}" for n in range(1, 5)),
    *(f"P3.{n}" for n in range(1, 5)),
    *(f"P4.{n}" for n in range(1, 4)),
    *(f"P5.{n}" for n in range(1, 5)),
    *(f"P6.{n}" for n in range(1, 5)),
    *(f"P7.{n}" for n in range(1, 5)),
    *(f"V{n:02d}" for n in range(1, 13)),
)

SCENARIO_LINE = re.compile(
    r"^\s*(?:Scenario Outline|Scenario Template|Scenario|Example):\s*(?P<name>.+?)\s*$"
)
BUILT_THROUGH = re.compile(r"^the platform is built through phase (?P<phase>\d)$")


@dataclass(frozen=True)
class PlanItem:
    id: str
    item: str


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
    """Step texts including the background's."""

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
        if not isinstance(entry, dict) or set(entry) != {"id", "item"}:
            raise ValueError(f"{path}: entry {index} must have exactly the keys id and item: {entry!r}")
        if not all(isinstance(entry[key], str) and entry[key].strip() for key in ("id", "item")):
            raise ValueError(f"{path}: entry {index} needs a non-empty id and item: {entry!r}")
        items.append(PlanItem(id=entry["id"], item=entry["item"]))
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


def scenario_names(path: Path) -> list[str]:
    """Scenario names as written, duplicates kept (the parser keeps only one of a repeated name)."""
    lines = path.read_text(encoding="utf-8").splitlines()
    return [match["name"] for line in lines if (match := SCENARIO_LINE.match(line))]


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
                    steps=tuple(step.name for step in template.steps),
                )
            )
    return scenarios


def uncovered_items(
    plan: Iterable[PlanItem], table: Iterable[TraceRow], scenarios: Iterable[ScenarioRef]
) -> dict[str, str]:
    """Plan items that no existing scenario proves, each with the reason."""
    known = {(scenario.feature, scenario.name) for scenario in scenarios}
    rows_by_id: dict[str, list[TraceRow]] = {}
    for row in table:
        rows_by_id.setdefault(row.id, []).append(row)
    problems: dict[str, str] = {}
    for item in plan:
        rows = rows_by_id.get(item.id, [])
        if not rows:
            problems[item.id] = f"no row in {TABLE_FILE.name}"
            continue
        dangling = [row for row in rows if (row.feature, row.scenario) not in known]
        if len(dangling) == len(rows):
            problems[item.id] = "; ".join(
                f"no scenario {row.scenario!r} in {row.feature}" for row in dangling
            )
    return problems


PLAN = load_plan()
TABLE = load_table()
SCENARIOS = load_scenarios()
PLAN_IDS = [item.id for item in PLAN]


def test_plan_has_the_43_fixed_items() -> None:
    assert len(PLAN) == 43
    assert tuple(PLAN_IDS) == EXPECTED_IDS


@pytest.mark.parametrize("item_id", PLAN_IDS)
def test_item_is_proved_by_a_scenario(item_id: str) -> None:
    problem = uncovered_items(PLAN, TABLE, SCENARIOS).get(item_id)
    assert problem is None, f"{item_id}: {problem}"


@pytest.mark.parametrize("row", TABLE, ids=[row.id for row in TABLE])
def test_row_names_an_existing_scenario(row: TraceRow) -> None:
    feature_file = FEATURES_DIR / row.feature
    assert feature_file.is_file(), f"{row.id}: no feature file {row.feature}"
    names = scenario_names(feature_file)
    assert row.scenario in names, f"{row.id}: no scenario {row.scenario!r} in {row.feature}"


@pytest.mark.parametrize("row", TABLE, ids=[row.id for row in TABLE])
def test_row_matches_its_plan_item(row: TraceRow) -> None:
    items = {item.id: item.item for item in PLAN}
    assert row.id in items, f"{row.id} is not an item of {PLAN_FILE.name}"
    assert row.item == items[row.id], f"{row.id}: item text differs from {PLAN_FILE.name}"


def test_table_has_one_row_per_item() -> None:
    repeated = sorted(item_id for item_id, count in Counter(row.id for row in TABLE).items() if count > 1)
    assert not repeated, f"ids with more than one row: {repeated}"
    assert sorted(row.id for row in TABLE) == sorted(PLAN_IDS)


def test_scenario_names_are_unique_across_files() -> None:
    where: dict[str, list[str]] = {}
    for path in sorted(FEATURES_DIR.glob("*.feature")):
        for name in scenario_names(path):
            where.setdefault(name, []).append(path.name)
    repeated = {name: files for name, files in where.items() if len(files) > 1}
    assert not repeated, f"scenario names used more than once: {repeated}"


@pytest.mark.parametrize("scenario", SCENARIOS, ids=[scenario.key for scenario in SCENARIOS])
def test_scenario_has_exactly_one_phase_tag(scenario: ScenarioRef) -> None:
    for tags in scenario.tag_sets():
        phases = sorted(tags & PHASE_TAGS)
        assert len(phases) == 1, f"{scenario.key}: phase tags {phases}, expected exactly one"


@pytest.mark.parametrize("scenario", SCENARIOS, ids=[scenario.key for scenario in SCENARIOS])
def test_scenario_uses_only_allowed_tags(scenario: ScenarioRef) -> None:
    for tags in scenario.tag_sets():
        unknown = sorted(tags - ALLOWED_TAGS)
        assert not unknown, f"{scenario.key}: tags not allowed: {unknown}"


@pytest.mark.parametrize("scenario", SCENARIOS, ids=[scenario.key for scenario in SCENARIOS])
def test_scenario_is_either_nightly_or_destructive(scenario: ScenarioRef) -> None:
    for tags in scenario.tag_sets():
        assert len(tags & {"nightly", "destructive"}) == 1, f"{scenario.key}: needs @nightly or @destructive"
        if "chaos" in tags:
            assert "destructive" in tags, f"{scenario.key}: a @chaos scenario is @destructive too"


@pytest.mark.parametrize("scenario", SCENARIOS, ids=[scenario.key for scenario in SCENARIOS])
def test_built_through_step_matches_the_phase_tag(scenario: ScenarioRef) -> None:
    built = [match["phase"] for step in scenario.steps if (match := BUILT_THROUGH.match(step))]
    assert len(built) == 1, f"{scenario.key}: needs one 'the platform is built through phase N' step"
    phases = scenario.tags & PHASE_TAGS
    expected = {f"phase{built[0]}"}
    assert phases == expected, f"{scenario.key}: built through phase {built[0]} but tagged {sorted(phases)}"


def test_checker_reports_a_planted_item_without_a_row() -> None:
    planted = PlanItem(id="P9.9", item="planted item that no row covers")
    problems = uncovered_items([*PLAN, planted], TABLE, SCENARIOS)
    assert "P9.9" in problems
    assert "no row" in problems["P9.9"]


def test_checker_reports_a_row_that_names_a_missing_scenario() -> None:
    plan = [PlanItem("A1", "covered"), PlanItem("A2", "dangling"), PlanItem("A3", "missing")]
    table = [
        TraceRow("A1", "covered", "x.feature", "It works"),
        TraceRow("A2", "dangling", "x.feature", "It was renamed"),
    ]
    scenarios = [ScenarioRef("x.feature", "It works", frozenset({"phase0"}), (), ())]
    problems = uncovered_items(plan, table, scenarios)
    assert set(problems) == {"A2", "A3"}
    assert "It was renamed" in problems["A2"]
