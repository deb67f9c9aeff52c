"""Which scenario steps have a binding. A scenario whose layer the lab provides must be fully bound (else it
would be skipped as "step not implemented yet"); every other gap is on the reviewed list
(tests/reviewed_unbound.py), which must equal what is unbound: a new gap or a stale entry fails."""

from __future__ import annotations

import pytest
from reviewed_unbound import REVIEWED_UNBOUND

import conftest
from boutique_suite.reporting import traceability
from boutique_suite.run.touches import declared

# Phases whose scenarios must all be bound: none may fall through to "step not implemented yet".
FULLY_BOUND_PHASES = {2, 3, 4, 5}
SCENARIOS = traceability.load_scenarios()
BINDINGS = traceability.bindings()
UNBOUND = {s.name: traceability.unbound(s, BINDINGS) for s in SCENARIOS}


def _phase(scenario: traceability.ScenarioRef) -> int | None:
    return next((int(t[5:]) for t in scenario.tags if t.startswith("phase")), None)


@pytest.mark.parametrize(
    "scenario",
    [s for s in SCENARIOS if _phase(s) in FULLY_BOUND_PHASES and "onprem_only" not in s.tags],
    ids=lambda s: s.key,
)
def test_scenarios_of_provided_layers_are_fully_bound(scenario: traceability.ScenarioRef) -> None:
    assert UNBOUND[scenario.name] == []


def test_unbound_steps_are_exactly_the_reviewed_list(capsys: pytest.CaptureFixture[str]) -> None:
    gaps = {name: tuple(missing) for name, missing in UNBOUND.items() if missing}
    with capsys.disabled():
        print(f"\n{len(gaps)} of {len(UNBOUND)} scenarios have unbound steps (they skip naming it):")
        for scenario, missing in gaps.items():
            print(f"  {scenario}: {missing[0]}")
    assert gaps == REVIEWED_UNBOUND


def test_the_step_modules_are_the_loaded_plugins() -> None:
    assert set(traceability.STEP_MODULES) == set(conftest.pytest_plugins)


@pytest.mark.parametrize("binding", BINDINGS, ids=lambda b: b.func.__name__)
def test_every_binding_declares_what_it_touches(binding: traceability.Binding) -> None:
    assert declared(binding.func) is not None, f"{binding.func.__module__}.{binding.func.__name__}"
