"""Chaos: faults, their reverts, and the cleanup of what interrupted runs left behind."""

from __future__ import annotations

import pytest
from pytest_bdd import given, parsers, then, when

from boutique_suite import cluster, faults
from boutique_suite.kube import Kube
from boutique_suite.targets import Target
from boutique_suite.undo import UndoStack


@pytest.fixture
def leftovers() -> dict[str, str]:
    return {}


INTERRUPTED = 'an earlier run was interrupted after cordoning "{node}" and starting a stress pod on it'


@given(parsers.parse(INTERRUPTED))
def interrupted_run(kube: Kube, undo: UndoStack, leftovers: dict[str, str], node: str) -> None:
    leftovers.update(faults.leave_interrupted_run(kube, node, run_id=f"interrupted-{kube.run_id}"))
    undo.push(f"uncordon {node}", lambda: faults.uncordon(kube, node))
    undo.push(f"delete {leftovers['namespace']}", lambda: kube.delete_namespace(leftovers["namespace"]))


@when("a new scenario starts")
def new_scenario_starts(kube: Kube, leftovers: dict[str, str]) -> None:
    leftovers["undone"] = "; ".join(faults.clean_leftovers(kube))


@then(parsers.parse('"{node}" is schedulable again and the stress pod is gone before any fault is injected'))
def leftovers_gone(kube: Kube, target: Target, leftovers: dict[str, str], node: str) -> None:
    cluster.expect_leftovers_gone(kube, {**leftovers, "node": node}, timeout=target.timeouts.cleanup)
