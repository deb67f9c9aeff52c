"""A run killed mid-fault: injects one fault on the lab, journaled the way the scenarios journal
theirs, says so on stdout and waits for tests/test_journal.py to SIGKILL it.

    python -m tests.interrupted_run "<fault>"      (BOUTIQUE_RUN_ID names the run)
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable

from boutique_suite.actions import disruption, faults, gitops_changes
from boutique_suite.actions.journal import Journal
from boutique_suite.clients.argocd import wait_synced_and_healthy
from boutique_suite.clients.kube import Kube, connect_to
from boutique_suite.context import sites
from boutique_suite.expectations import gitops_checks
from boutique_suite.run import runlabel, targets
from boutique_suite.run.undo import UndoStack
from steps import gitops_steps, rollout_steps

LAB = targets.load("lab")
APP = LAB.application
NODE = "k8s-worker2"


def git_drift(kube: Kube, undo: UndoStack) -> None:
    argocd = gitops_checks.argocd_client(LAB)
    story: dict = {"app": APP}
    commits = gitops_changes.ScenarioCommits(LAB, argocd, sites.gitops_repo(LAB), undo, story)
    rollout_steps.commit_annotation(commits, kube.run_id, story, "boutique.suite/killed-run")
    wait_synced_and_healthy(argocd, APP, LAB.timeouts.rollout, revision=story["commit"])


def self_heal_off(kube: Kube, undo: UndoStack) -> None:
    gitops_steps.self_heal_off(gitops_checks.argocd_client(LAB), undo, {}, APP)


def auto_sync_off(kube: Kube, undo: UndoStack) -> None:
    rollout_steps.suspend_auto_sync(gitops_checks.argocd_client(LAB), undo, {}, APP)


def cordon(kube: Kube, undo: UndoStack) -> None:
    undo.push(f"uncordon {NODE}", lambda: faults.uncordon(kube, NODE), journal=("uncordon", {"node": NODE}))
    faults.cordon(kube, NODE)


def _in_scratch_namespace(kube: Kube, undo: UndoStack, inject: Callable[[str], object]) -> None:
    namespace = kube.create_namespace(LAB.namespaces.scratch_prefix)
    undo.push(
        f"delete {namespace}",
        lambda: kube.delete_namespace(namespace),
        journal=("delete_namespace", {"namespace": namespace}),
    )
    inject(namespace)


def node_pressure(kube: Kube, undo: UndoStack) -> None:
    made = faults.raise_requests(kube, NODE, "memory", 0.9)
    undo.push(
        f"delete {made['namespace']}",
        lambda: kube.delete_namespace(made["namespace"]),
        journal=("delete_namespace", {"namespace": made["namespace"]}),
    )


def crash_loop(kube: Kube, undo: UndoStack) -> None:
    _in_scratch_namespace(kube, undo, lambda ns: faults.start_crash_loop(kube, ns, "crashloop"))


def stress_pod(kube: Kube, undo: UndoStack) -> None:
    _in_scratch_namespace(kube, undo, lambda ns: kube.create_pod(ns, "stress", node=NODE, cpu="500m"))


def controller_stopped(kube: Kube, undo: UndoStack) -> None:
    disruption.stop_controller(LAB, kube, undo)


FAULTS: dict[str, Callable[[Kube, UndoStack], None]] = {
    "git drift": git_drift,
    "self-heal off": self_heal_off,
    "auto-sync off": auto_sync_off,
    "cordon": cordon,
    "node pressure": node_pressure,
    "crash loop": crash_loop,
    "stress pod": stress_pod,
    "controller stopped": controller_stopped,
}


def main(fault: str) -> None:
    kube = connect_to(LAB, runlabel.new_run_id())
    journal = Journal(kube).open()
    FAULTS[fault](kube, UndoStack(journal=lambda: journal))
    print("injected", flush=True)
    time.sleep(3600)  # until killed


if __name__ == "__main__":
    assert os.environ.get("BOUTIQUE_RUN_ID"), "set BOUTIQUE_RUN_ID"
    main(sys.argv[1])
