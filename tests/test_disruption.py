"""Faults of the chaos and self-heal scenarios on the lab: a drain that fails is still reverted, and never
forces pods that belong to no controller; the application controller switch names what it knows."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from boutique_suite.actions import disruption
from boutique_suite.clients.kube import Kube, connect_to
from boutique_suite.expectations import argocd_workloads
from boutique_suite.run import runlabel, targets, waits
from boutique_suite.run.undo import UndoStack
from provisioning.lab import manager

pytestmark = pytest.mark.lab
LAB = targets.load("lab")
NODE = "k8s-worker2"
CTL = argocd_workloads.CONTROLLER


@pytest.fixture(scope="module")
def kube() -> Kube:
    manager.up()
    return connect_to(LAB, runlabel.new_run_id())


@pytest.fixture
def namespace(kube: Kube) -> Iterator[str]:
    name = kube.create_namespace("suite-disruption")
    yield name
    kube.delete_namespace(name)


def test_failed_drain_is_reverted_and_forces_nothing(kube: Kube, namespace: str) -> None:
    kube.create_pod(namespace, "bare", node=NODE, cpu="10m")  # no controller: drain refuses without --force
    undo = UndoStack()
    try:
        with pytest.raises(AssertionError, match="declare no controller"):
            disruption.drain(LAB, kube, NODE, undo)
        node = kube.node(NODE)
        assert node.spec.unschedulable and node.metadata.annotations[runlabel.FAULT_BY] == kube.run_id
    finally:
        assert undo.drain() == []
    node = kube.node(NODE)
    assert not node.spec.unschedulable and runlabel.FAULT_BY not in (node.metadata.annotations or {})
    pod = kube.core.read_namespaced_pod("bare", namespace)
    assert pod.metadata.deletion_timestamp is None and pod.spec.node_name == NODE


def test_pods_on_probe_waits_for_a_running_pod_on_that_node(kube: Kube, namespace: str) -> None:
    kube.create_pod(namespace, "placed", node="k8s-worker1", cpu="10m")
    with pytest.raises(waits.WaitTimeout, match="placed"):
        disruption.expect_pods_on(kube, namespace, "app=placed", NODE, timeout=2)
    # the target's rollout timeout: a node's first pod, with the offline tests running beside, took 60 s once
    rollout = LAB.timeouts.rollout
    placed = disruption.expect_pods_on(kube, namespace, "app=placed", "k8s-worker1", timeout=rollout)
    assert placed.check.detail


class _FakeArgoCD:
    """An Argo CD API whose Application is reconciled again at every read (as if a controller still ran)."""

    def __init__(self) -> None:
        self.reads = 0

    def application(self, name: str) -> dict:
        self.reads += 1
        return {"status": {"reconciledAt": f"2026-01-01T00:00:{self.reads:02d}Z"}}


def test_controller_outage_restarts_it_even_when_the_fault_did_not_take(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    calls: list[str] = []
    monkeypatch.setattr(argocd_workloads, "controller_replicas", lambda target, kube: 1)
    monkeypatch.setattr(argocd_workloads, "stop_controller", lambda target, kube: calls.append(f"stop {CTL}"))
    monkeypatch.setattr(
        argocd_workloads, "start_controller", lambda target, kube, replicas: calls.append(f"start {CTL}")
    )
    undo = UndoStack()
    with pytest.raises(AssertionError, match="another controller was running"):
        disruption.stop_argocd_controller(LAB, None, _FakeArgoCD(), "app", 0, undo)  # type: ignore[arg-type]
    assert calls == [f"stop {CTL}", f"start {CTL}"]
    assert undo.drain() == []  # the scenario's teardown starts it again too (a running one is left alone)
    assert calls[2:] == [f"start {CTL}"]
