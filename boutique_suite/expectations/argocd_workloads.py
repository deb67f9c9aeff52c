"""Argo CD as workloads in its namespace (install.yaml's Deployments and the application controller's
StatefulSet): what both sites, the lab and on-prem, read and change about them through the Kubernetes API."""

from __future__ import annotations

from typing import TYPE_CHECKING

from boutique_suite.run import waits
from boutique_suite.run.targets import Target

if TYPE_CHECKING:
    from boutique_suite.clients.kube import Kube

CONTROLLER = "argocd-application-controller"
WORKLOADS = ("argocd-server", "argocd-repo-server", CONTROLLER, "argocd-redis")


def components(target: Target, kube: Kube) -> dict[str, str]:
    """{workload: "<n> ready"}; fails naming a workload that is missing or not fully ready."""
    ns = target.argocd_namespace
    apps = kube.apps
    workloads = [*apps.list_namespaced_deployment(ns).items, *apps.list_namespaced_stateful_set(ns).items]
    found = {}
    for dep in workloads:
        ready = dep.status.ready_replicas or 0
        assert ready == (dep.spec.replicas or 1), f"{dep.metadata.name}: {ready}/{dep.spec.replicas} ready"
        found[dep.metadata.name] = f"{ready} ready"
    for name in WORKLOADS:
        assert name in found, f"{name} not found in namespace {ns}: {sorted(found)}"
    return found


def controller_replicas(target: Target, kube: Kube) -> int:
    return kube.apps.read_namespaced_stateful_set(CONTROLLER, target.argocd_namespace).spec.replicas or 1


def start_controller(target: Target, kube: Kube, replicas: int) -> None:
    body = {"spec": {"replicas": replicas}}
    kube.apps.patch_namespaced_stateful_set_scale(CONTROLLER, target.argocd_namespace, body)


def stop_controller(target: Target, kube: Kube) -> None:
    """The StatefulSet scaled to 0, and its pods gone."""
    ns = target.argocd_namespace
    kube.apps.patch_namespaced_stateful_set_scale(CONTROLLER, ns, {"spec": {"replicas": 0}})

    def gone() -> waits.Check:
        pods = kube.pods(ns, f"app.kubernetes.io/name={CONTROLLER}")
        return waits.pending(f"{len(pods)} controller pods") if pods else waits.succeeded()

    waits.until(gone, timeout=target.timeouts.cleanup, what=f"{CONTROLLER} pods gone")


def controller_running(target: Target, kube: Kube) -> bool:
    status = kube.apps.read_namespaced_stateful_set(CONTROLLER, target.argocd_namespace).status
    return bool(status.ready_replicas)


def server_log(target: Target, kube: Kube, since_seconds: int) -> str:
    """The argocd-server pods' logs of the last ``since_seconds``."""
    ns = target.argocd_namespace
    pods = kube.pods(ns, "app.kubernetes.io/name=argocd-server")
    return "\n".join(
        kube.core.read_namespaced_pod_log(p.metadata.name, ns, since_seconds=since_seconds) for p in pods
    )
