"""Chaos: faults, their reverts, and the cleanup of what interrupted runs left behind."""

from __future__ import annotations

import time

import pytest
from pytest_bdd import given, parsers, then, when

from boutique_suite.actions import cluster, disruption, faults, reverts
from boutique_suite.actions.cluster import Workload
from boutique_suite.clients.argocd import ArgoCDClient
from boutique_suite.clients.kube import Kube
from boutique_suite.reporting.evidence import Execution
from boutique_suite.run.targets import Target
from boutique_suite.run.touches import Touches, touches
from boutique_suite.run.undo import UndoStack


@pytest.fixture
def leftovers() -> dict[str, str]:
    return {}


INTERRUPTED = 'an earlier run was interrupted after cordoning "{node}" and starting a stress pod on it'


@given(parsers.parse(INTERRUPTED))
@touches(Touches.control_plane)
def interrupted_run(kube: Kube, undo: UndoStack, leftovers: dict[str, str], node: str) -> None:
    leftovers.update(faults.leave_interrupted_run(kube, node, run_id=f"interrupted-{kube.run_id}"))
    undo.push(f"uncordon {node}", lambda: faults.uncordon(kube, node))
    undo.push(f"delete {leftovers['namespace']}", lambda: kube.delete_namespace(leftovers["namespace"]))


@when("a new scenario starts")
@touches(Touches.control_plane)
def new_scenario_starts(kube: Kube, target: Target, leftovers: dict[str, str]) -> None:
    leftovers["undone"] = "; ".join(reverts.clean_leftovers(kube, target))


@then(parsers.parse('"{node}" is schedulable again and the stress pod is gone before any fault is injected'))
@touches(Touches.control_plane)
def leftovers_gone(kube: Kube, target: Target, leftovers: dict[str, str], node: str) -> None:
    cluster.expect_leftovers_gone(kube, {**leftovers, "node": node}, timeout=target.timeouts.cleanup)


# --- the Argo CD application controller stopped and started again ----------------------------------------


@when(
    parsers.parse(
        "the Argo CD application controller is stopped for {seconds:d} seconds and then started again"
    )
)
@touches(Touches.argocd, Touches.control_plane)
def controller_outage(
    kube: Kube, target: Target, argocd: ArgoCDClient, app_ns: str, undo: UndoStack, story: dict, seconds: int
) -> None:
    story["availability"] = disruption.watch_availability(kube, app_ns, undo)
    story["outage"] = disruption.stop_argocd_controller(target, kube, argocd, story["app"], seconds, undo)


@then("every Boutique Deployment kept all replicas available throughout")
@touches(Touches.control_plane, Touches.node_runtime)
def kept_available(story: dict) -> None:
    disruption.expect_never_dropped(story["availability"])


@then(
    parsers.parse('the Application "{app}" is Synced and Healthy within {seconds:d} seconds of the restart')
)
@touches(Touches.argocd)
def healthy_after_restart(
    argocd: ArgoCDClient, execution: Execution, story: dict, app: str, seconds: int
) -> None:
    took = disruption.expect_reconciled_after_restart(argocd, app, story["outage"], seconds)
    execution.timing("controller_restart_recovery_seconds", took, budget=seconds)


# --- a worker drained and uncordoned ---------------------------------------------------------------------


@when(parsers.parse('worker "{node}" is cordoned and drained'))
@touches(Touches.control_plane, Touches.node_runtime)
def drained(
    kube: Kube, target: Target, app_ns: str, execution: Execution, undo: UndoStack, story: dict, node: str
) -> None:
    story["drained_pods"], seconds = disruption.drain_with_workload(target, kube, app_ns, node, undo)
    story["drain_started"] = time.monotonic() - execution.timing("drain_seconds", seconds)


@then(
    parsers.parse(
        'every Boutique Deployment has all replicas available on "{node}" within {seconds:d} seconds'
    )
)
@touches(Touches.control_plane, Touches.node_runtime)
def all_on_node(kube: Kube, app_ns: str, execution: Execution, story: dict, node: str, seconds: int) -> None:
    disruption.expect_all_on(kube, app_ns, node, seconds)
    execution.timing("rescheduled_seconds", time.monotonic() - story["drain_started"], budget=seconds)


@when(parsers.parse('worker "{node}" is uncordoned'))
@touches(Touches.control_plane)
def uncordoned(kube: Kube, node: str) -> None:
    faults.uncordon(kube, node)


@then(
    parsers.parse(
        'a test Deployment with {replicas:d} replicas places pods on "{node}" within {seconds:d} seconds'
    )
)
@touches(Touches.control_plane, Touches.node_runtime)
def places_pods_on(
    kube: Kube, workload: Workload, execution: Execution, replicas: int, node: str, seconds: int
) -> None:
    cluster.create_test_deployment(kube, workload, replicas)
    waited = disruption.expect_pods_on(kube, workload.namespace, workload.selector, node, seconds)
    execution.timing("placed_on_uncordoned_seconds", waited.seconds, budget=seconds)
