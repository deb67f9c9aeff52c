"""Steps shared by every feature: the layer a scenario stands on, and the scenario's workload."""

from __future__ import annotations

import pytest
from pytest_bdd import given, parsers

from boutique_suite.actions.cluster import Workload
from boutique_suite.run.touches import touches
from provisioning import LayerRunner


@given(parsers.parse("the platform is built through phase {phase:d}"))
@touches()
def platform_built_through(layers: LayerRunner, phase: int) -> None:
    layers.require(phase)


@pytest.fixture
def workload(scenario_ns: str) -> Workload:
    return Workload(namespace=scenario_ns)
