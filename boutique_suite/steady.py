"""The platform's state that faults change and reverts must give back, read from the live platform.

Taken before a fault and again after its revert, two snapshots must be equal (``diff`` is empty):
the nodes' schedulability, the suite's namespaces, the Application's sync policy and status, what
gitops-repo holds, the images the Deployments run, and whether Argo CD's controller runs.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from boutique_suite import disruption, faults, gitops_repo, runlabel, waits
from boutique_suite.argocd import ArgoCDClient, wait_synced_and_healthy
from boutique_suite.kube import Kube
from boutique_suite.targets import Target


def snapshot(target: Target, kube: Kube, argocd: ArgoCDClient | None, app: str) -> dict[str, Any]:
    """Without ``argocd`` (a platform below phase 4): the nodes and the namespaces only. The namespaces of
    the reading run itself are left out: its scenario fixtures remove them."""
    namespaces = kube.core.list_namespace(label_selector=runlabel.leftovers_selector(kube.run_id)).items
    state: dict[str, Any] = {
        "nodes": {
            node.metadata.name: {
                "unschedulable": bool(node.spec.unschedulable),
                "fault_by": (node.metadata.annotations or {}).get(faults.FAULT_BY),
            }
            for node in kube.nodes()
        },
        "suite namespaces": sorted(
            ns.metadata.name for ns in namespaces if not (ns.status and ns.status.phase == "Terminating")
        ),
    }
    if argocd is None:
        return state
    application = argocd.application(app)
    status = application.get("status", {})
    return state | {
        "application": {
            "automated": application["spec"].get("syncPolicy", {}).get("automated"),
            "sync": status.get("sync", {}).get("status"),
            "health": status.get("health", {}).get("status"),
        },
        "gitops-repo tree": gitops_repo.gitops_repo(target).tree() if target.is_lab else None,
        "images": {
            dep.metadata.name: [c.image for c in dep.spec.template.spec.containers]
            for dep in kube.apps.list_namespaced_deployment(target.namespaces.dev).items
        },
        "argocd controller running": disruption.controller_running(target, kube),
    }


def diff(before: dict[str, Any], after: dict[str, Any]) -> dict[str, tuple[Any, Any]]:
    """What differs, by key: {key: (before, after)}; empty when the platform is as it was."""
    return {
        key: (before.get(key), after.get(key))
        for key in before.keys() | after.keys()
        if before.get(key) != after.get(key)
    }


@dataclass
class SteadyState:
    """Chaos Toolkit's steady-state hypothesis, as a snapshot: taken before the fault, and after the
    reverts it must hold again (waited for: Argo CD and the controllers need a moment)."""

    target: Target
    kube: Kube
    argocd: ArgoCDClient | None
    app: str
    before: dict[str, Any]

    @classmethod
    def take(cls, target: Target, kube: Kube, argocd: ArgoCDClient | None, app: str) -> SteadyState:
        """The hypothesis holds before the fault: the Application Synced and Healthy (waited for, as an
        earlier scenario's pods may still be settling), then the snapshot."""
        if argocd is not None:
            wait_synced_and_healthy(argocd, app, target.timeouts.rollout)
        return cls(target, kube, argocd, app, snapshot(target, kube, argocd, app))

    def expect_restored(self, timeout: float) -> float:
        """Seconds until the platform is as it was; WaitFailed names what did not come back."""

        def restored() -> waits.Check:
            left = diff(self.before, snapshot(self.target, self.kube, self.argocd, self.app))
            return waits.pending(f"not as before the fault: {left}") if left else waits.succeeded()

        return waits.until(
            restored, timeout=timeout, interval=2, what="the steady state after the reverts"
        ).seconds
