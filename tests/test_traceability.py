"""Traceability of the validation plan and the rules every feature file follows.

features/plan.yaml lists the 43 items of the plan (V07 is merged into P6.3); docs/traceability.md maps each
item to the scenarios that prove it. These tests fail when an item has no scenario, a scenario of an item
has an unbound step, a row names a scenario that does not exist, or a scenario breaks the tag rules the
markers and the nightly selection rely on. boutique_suite.reporting.traceability adds what the last run said.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from pathlib import Path

import pytest
from reviewed_unbound import REVIEWED_UNBOUND

from boutique_suite.expectations import steady
from boutique_suite.reporting import traceability
from boutique_suite.reporting.traceability import (
    FEATURES_DIR,
    PLAN_FILE,
    TABLE_FILE,
    PlanItem,
    ScenarioRef,
    TraceRow,
    load_plan,
    load_scenarios,
    load_table,
)

ROOT = traceability.ROOT
PHASE_TAGS = frozenset(f"phase{n}" for n in range(8))
THEME_TAGS = frozenset({"selfheal", "drift", "rollout", "alerts", "hpa", "chaos", "destructive", "nightly"})
TOLERANCE_TAGS = frozenset(steady.TOLERANCES)
ALLOWED_TAGS = PHASE_TAGS | THEME_TAGS | TOLERANCE_TAGS | {"onprem_only"}

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


def scenario_names(path: Path) -> list[str]:
    """Scenario names as written, duplicates kept (the parser keeps only one of a repeated name)."""
    lines = path.read_text(encoding="utf-8").splitlines()
    return [match["name"] for line in lines if (match := SCENARIO_LINE.match(line))]


PLAN = load_plan()
TABLE = load_table()
SCENARIOS = load_scenarios()
BINDINGS = traceability.bindings()
PLAN_IDS = [item.id for item in PLAN]
LIVE = [item for item in PLAN if not item.merged_into]
TRACES = {t.item.id: t for t in traceability.trace(PLAN, TABLE, SCENARIOS, BINDINGS, {})}


def test_plan_has_the_43_fixed_items() -> None:
    assert len(PLAN) == 43
    assert tuple(PLAN_IDS) == EXPECTED_IDS


def test_a_merged_item_names_a_live_item_and_has_no_row_of_its_own() -> None:
    merged = [item for item in PLAN if item.merged_into]
    assert [(item.id, item.merged_into) for item in merged] == [("V07", "P6.3")]
    live = {item.id: item.item for item in LIVE}
    for item in merged:
        assert live.get(item.merged_into) == item.item, f"{item.id} is merged into a different item"
        assert item.note
        assert item.id not in {row.id for row in TABLE}


@pytest.mark.parametrize("item_id", [item.id for item in LIVE])
def test_item_has_an_existing_scenario(item_id: str) -> None:
    found = TRACES[item_id]
    assert found.exists, f"{item_id}: {'; '.join(found.missing)}"


@pytest.mark.parametrize("item_id", [item.id for item in LIVE])
def test_every_step_of_an_item_is_bound_or_reviewed(item_id: str) -> None:
    """An unbound step fails here unless it is on the reviewed list (tests/reviewed_unbound.py), and a
    listed step that is bound now must leave the list."""
    listed = [step for scenario in TRACES[item_id].scenarios for step in REVIEWED_UNBOUND.get(scenario, ())]
    assert TRACES[item_id].unbound == listed


@pytest.mark.parametrize("row", TABLE, ids=[f"{row.id}:{row.scenario}" for row in TABLE])
def test_row_names_an_existing_scenario(row: TraceRow) -> None:
    feature_file = FEATURES_DIR / row.feature
    assert feature_file.is_file(), f"{row.id}: no feature file {row.feature}"
    names = scenario_names(feature_file)
    assert row.scenario in names, f"{row.id}: no scenario {row.scenario!r} in {row.feature}"


@pytest.mark.parametrize("row", TABLE, ids=[f"{row.id}:{row.scenario}" for row in TABLE])
def test_row_matches_its_plan_item(row: TraceRow) -> None:
    items = {item.id: item.item for item in LIVE}
    assert row.id in items, f"{row.id} is not a live item of {PLAN_FILE.name}"
    assert row.item == items[row.id], f"{row.id}: item text differs from {PLAN_FILE.name}"


def test_every_live_item_has_a_row() -> None:
    assert sorted({row.id for row in TABLE}) == sorted(item.id for item in LIVE)


def test_a_scenario_proves_an_item_at_most_once() -> None:
    repeated = [key for key, n in Counter((row.id, row.scenario) for row in TABLE).items() if n > 1]
    assert not repeated


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
def test_a_chaos_scenario_on_the_boutique_says_what_it_tolerates_during_the_fault(
    scenario: ScenarioRef,
) -> None:
    """From phase 4 the storefront is watched during a fault: the scenario declares whether it must keep
    answering (@keeps_serving) or may stop (@tolerates_outage); below phase 4 there is no storefront."""
    for tags in scenario.tag_sets():
        phase = max((int(t[5:]) for t in tags & PHASE_TAGS), default=0)
        declared = tags & TOLERANCE_TAGS
        if "chaos" in tags and phase >= 4:
            assert len(declared) == 1, f"{scenario.key}: needs one of @keeps_serving, @tolerates_outage"
        else:
            assert not declared, f"{scenario.key}: only a @chaos scenario from phase 4 declares a tolerance"


@pytest.mark.parametrize("scenario", SCENARIOS, ids=[scenario.key for scenario in SCENARIOS])
def test_built_through_step_matches_the_phase_tag(scenario: ScenarioRef) -> None:
    built = [match["phase"] for step in scenario.steps if (match := BUILT_THROUGH.match(step))]
    assert len(built) == 1, f"{scenario.key}: needs one 'the platform is built through phase N' step"
    phases = scenario.tags & PHASE_TAGS
    expected = {f"phase{built[0]}"}
    assert phases == expected, f"{scenario.key}: built through phase {built[0]} but tagged {sorted(phases)}"


def test_checker_reports_a_planted_item_without_a_row() -> None:
    planted = PlanItem(id="P9.9", item="planted item that no row covers")
    traces = {t.item.id: t for t in traceability.trace([*PLAN, planted], TABLE, SCENARIOS, BINDINGS, {})}
    assert not traces["P9.9"].exists
    assert traces["P9.9"].missing == [f"no row in {TABLE_FILE.name}"]


def test_checker_reports_a_row_that_names_a_missing_scenario() -> None:
    plan = [PlanItem("A1", "covered"), PlanItem("A2", "dangling"), PlanItem("A3", "missing")]
    table = [
        TraceRow("A1", "covered", "x.feature", "It works"),
        TraceRow("A2", "dangling", "x.feature", "It was renamed"),
    ]
    scenarios = [ScenarioRef("x.feature", "It works", frozenset({"phase0"}), (), ())]
    traces = {t.item.id: t for t in traceability.trace(plan, table, scenarios, [], {})}
    assert [i for i, t in traces.items() if not t.exists] == ["A2", "A3"]
    assert "It was renamed" in traces["A2"].missing[0]


PLANTED = ScenarioRef(
    "x.feature",
    "It works",
    frozenset({"phase2"}),
    (),
    ("the platform is built through phase 2", "a step nobody bound"),
    ("given", "then"),
)


def test_checker_reports_an_unbound_step() -> None:
    traces = traceability.trace(
        [PlanItem("A1", "covered")],
        [TraceRow("A1", "covered", "x.feature", "It works")],
        [PLANTED],
        BINDINGS,
        {},
    )
    assert traces[0].unbound == ["then a step nobody bound"]


def _run(summary: dict) -> traceability.ItemTrace:
    table = [TraceRow("A1", "covered", "x.feature", "It works")]
    return traceability.trace([PlanItem("A1", "covered")], table, [PLANTED], BINDINGS, summary)[0]


@pytest.mark.parametrize(
    ("entries", "column", "why"),
    [
        ([], "not run", ""),
        ([{"outcome": "passed", "execution": "real"}], "passed real", ""),
        ([{"outcome": "passed", "execution": "static"}], "static", ""),
        (
            [{"outcome": "passed", "execution": "simulated", "simulated": ["slack: a local receiver"]}],
            "passed simulated",
            "slack: a local receiver",
        ),
        ([{"outcome": "skipped", "execution": "skipped", "reason": "no registry"}], "skipped", "no registry"),
        (
            [{"outcome": "passed", "execution": "real"}, {"outcome": "failed", "execution": "real"}],
            "failed",
            "",
        ),
        (
            [{"outcome": "passed", "execution": "real"}, {"outcome": "passed", "execution": "simulated"}],
            "passed simulated",
            "",
        ),
    ],
)
def test_last_run_column_is_the_weakest_run_of_the_items_scenarios(
    entries: list, column: str, why: str
) -> None:
    found = _run({"It works": [{"scenario": "It works", **e} for e in entries]})
    assert (found.run, found.why) == (column, why)


def test_summary_file_feeds_the_table_and_the_counts(tmp_path: Path) -> None:
    summary = tmp_path / "summary.json"
    entry = {"scenario": "It works", "outcome": "passed", "execution": "simulated", "simulated": ["x"]}
    summary.write_text(json.dumps({"scenarios": {"steps/test_scenarios.py::test_it_works": entry}}))
    found = _run(traceability.load_summary(summary))
    row = (
        "| A1 | covered | It works | yes | no: 1 unbound (then a step nobody bound) | passed simulated (x) |"
    )
    assert row in traceability.markdown([found]).splitlines()
    counts = traceability.counts([found])
    assert counts["passed simulated"] == 1
    assert counts["unbound steps"] == 1


def test_table_is_a_page_of_the_run_not_a_result(tmp_path: Path) -> None:
    page = traceability.attach_to_allure("| table |", pages=tmp_path / "run-pages")
    assert page == tmp_path / "run-pages" / "traceability.md" and page.read_text() == "| table |"
    assert not list(tmp_path.rglob("*-result.json"))
