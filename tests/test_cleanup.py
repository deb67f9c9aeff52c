"""Run labels: leftovers of earlier runs are removed; this run's objects and foreign ones stay."""

from __future__ import annotations

import pytest
from kubernetes import client

from boutique_suite.actions import faults, reverts
from boutique_suite.actions.journal import Journal, acquire_lock, live_runs, release_lock
from boutique_suite.clients.kube import Kube, connect_to
from boutique_suite.run import runlabel, targets
from provisioning.lab import manager

pytestmark = pytest.mark.lab
LAB = targets.load("lab")
NODE = "k8s-worker2"


def as_run(run_id: str) -> Kube:
    lab = targets.load("lab")
    return connect_to(lab, run_id)


@pytest.fixture(scope="module")
def lab() -> None:
    manager.up()


def phase(kube: Kube, name: str) -> str | None:
    matches = [ns for ns in kube.core.list_namespace().items if ns.metadata.name == name]
    return matches[0].status.phase if matches else None


def test_leftovers_of_an_earlier_run_are_removed_and_nothing_else(lab: None) -> None:
    earlier, current = as_run("earlier-run"), as_run("current-run")
    leftover = earlier.create_namespace("suite")
    mine = current.create_namespace("suite")
    foreign = "not-made-by-the-suite"
    current.core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=foreign)))
    try:
        assert current.core.read_namespace(leftover).metadata.labels[runlabel.RUN_ID] == "earlier-run"
        removed = current.delete_leftovers()
        assert leftover in removed
        assert mine not in removed and foreign not in removed
        assert phase(current, leftover) in (None, "Terminating")
        assert phase(current, mine) == "Active"
        assert phase(current, foreign) == "Active"
    finally:
        for name in (mine, foreign, leftover):
            current.delete_namespace(name)


def test_a_run_whose_lease_is_alive_keeps_its_objects_until_it_ends(lab: None) -> None:
    """Two runs on one platform: the sweep of one spares the namespaces and cordons of the other
    while the other's Lease is alive, and removes them once it is released."""
    other, current = as_run(f"alive-{runlabel.new_run_id()}"), as_run("current-run")
    held = Journal(other).open()
    theirs = other.create_namespace("suite")
    faults.cordon(other, NODE)
    try:
        assert other.run_id in live_runs(current)
        undone = reverts.clean_leftovers(current, LAB)
        assert not [u for u in undone if theirs in u or NODE in u], undone
        assert phase(current, theirs) == "Active"
        assert current.node(NODE).spec.unschedulable
    finally:
        held.close()
    undone = reverts.clean_leftovers(current, LAB)
    assert f"namespace/{theirs} deleted" in undone
    assert f"node/{NODE} uncordoned (left by run {other.run_id})" in undone
    assert not current.node(NODE).spec.unschedulable


def test_one_destructive_scenario_at_a_time_and_a_dead_holder_loses_the_lock(lab: None) -> None:
    first, second = as_run(f"first-{runlabel.new_run_id()}"), as_run(f"second-{runlabel.new_run_id()}")
    first_lease, second_lease = Journal(first).open(), Journal(second).open()
    try:
        assert acquire_lock(first, "test-lock", timeout=0) is None
        assert acquire_lock(second, "test-lock", timeout=1, interval=0.5) == first.run_id
        first_lease.close()  # the first run ends without releasing the lock: its Lease is gone
        assert acquire_lock(second, "test-lock", timeout=0) is None
        release_lock(first, "test-lock")  # not the holder any more: nothing happens
        assert acquire_lock(first, "test-lock", timeout=0) == second.run_id
    finally:
        release_lock(second, "test-lock")
        first_lease.close()
        second_lease.close()
