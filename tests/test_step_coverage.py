"""Which scenario steps have a binding. A scenario whose layer the lab provides must be fully bound (else it
would be skipped as "step not implemented yet"); the rest is listed so the gap stays visible."""

from __future__ import annotations

import importlib

import pytest
from pytest_bdd.parser import FeatureParser
from test_traceability import FEATURES_DIR

import conftest

# Phases whose scenarios must all be bound: none may fall through to "step not implemented yet".
FULLY_BOUND_PHASES = {2, 3, 4, 5}


def step_matchers() -> list[tuple[str, object]]:
    found = []
    for module_name in conftest.pytest_plugins:
        module = importlib.import_module(module_name)
        for name, value in vars(module).items():
            if name.startswith("pytestbdd_stepdef_"):
                context = value._fixture_function()
                found.append((context.type, context.parser))
    return found


def unbound_steps() -> dict[str, tuple[int | None, list[str]]]:
    matchers = step_matchers()
    result = {}
    for path in sorted(FEATURES_DIR.glob("*.feature")):
        feature = FeatureParser(basedir=str(FEATURES_DIR), filename=path.name).parse()
        for template in feature.scenarios.values():
            tags = template.tags | feature.tags
            phase = next((int(t[5:]) for t in tags if t.startswith("phase")), None)
            if "onprem_only" in tags:
                continue
            missing = []
            for step in template.steps:
                text = step.name
                if "<" in text:  # outline placeholders: check the first example row
                    rows = template.examples[0].examples if template.examples else []
                    header = template.examples[0].example_params if template.examples else []
                    if rows:
                        for key, value in zip(header, rows[0], strict=False):
                            text = text.replace(f"<{key}>", value)
                if not any(kind == step.type and parser.is_matching(text) for kind, parser in matchers):
                    missing.append(f"{step.type} {text}")
            result[f"{path.name}: {template.name}"] = (phase, missing)
    return result


UNBOUND = unbound_steps()


@pytest.mark.parametrize("scenario", [s for s, (phase, _) in UNBOUND.items() if phase in FULLY_BOUND_PHASES])
def test_scenarios_of_provided_layers_are_fully_bound(scenario: str) -> None:
    assert UNBOUND[scenario][1] == []


def test_report_of_unbound_steps(capsys: pytest.CaptureFixture[str]) -> None:
    gaps = {s: m for s, (_, m) in UNBOUND.items() if m}
    with capsys.disabled():
        print(f"\n{len(gaps)} of {len(UNBOUND)} scenarios have unbound steps (they skip naming it):")
        for scenario, missing in gaps.items():
            print(f"  {scenario}: {missing[0]}")
    assert len(gaps) < len(UNBOUND)
