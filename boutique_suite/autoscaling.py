"""The Boutique's HorizontalPodAutoscalers as gitops-repo declares them, the HPA controller's view of them,
and Argo CD leaving the replicas they own alone."""

from __future__ import annotations

import time

from kubernetes import client

from boutique_suite import waits
from boutique_suite.argocd import ArgoCDClient, sync_and_health
from boutique_suite.kube import Kube
from boutique_suite.undo import UndoStack

REPLICAS = "/spec/replicas"


def hpa_for(kube: Kube, namespace: str, deployment: str) -> client.V2HorizontalPodAutoscaler:
    hpas = kube.autoscaling.list_namespaced_horizontal_pod_autoscaler(namespace).items
    found = [
        h
        for h in hpas
        if h.spec.scale_target_ref.kind == "Deployment" and h.spec.scale_target_ref.name == deployment
    ]
    assert found, f"no HorizontalPodAutoscaler targets Deployment {namespace}/{deployment}"
    return found[0]


def _cpu_target(hpa: client.V2HorizontalPodAutoscaler) -> int | None:
    for metric in hpa.spec.metrics or []:
        if metric.type == "Resource" and metric.resource.name == "cpu":
            return metric.resource.target.average_utilization
    return None


def _current_cpu(hpa: client.V2HorizontalPodAutoscaler) -> int | None:
    for metric in hpa.status.current_metrics or []:
        if metric.type == "Resource" and metric.resource and metric.resource.name == "cpu":
            return metric.resource.current.average_utilization
    return None


def expect_hpas(kube: Kube, namespace: str, rows: list[list[str]]) -> list[str]:
    """``rows``: deployment, min replicas, max replicas, target CPU ("70%"), as the feature's table.
    Returns the Deployments."""
    wrong = []
    for deployment, minimum, maximum, cpu in rows:
        hpa = hpa_for(kube, namespace, deployment)
        have = (hpa.spec.min_replicas, hpa.spec.max_replicas, _cpu_target(hpa))
        want = (int(minimum), int(maximum), int(cpu.rstrip("%")))
        if have != want:
            wrong.append(f"{deployment}: min/max/CPU {have}, expected {want}")
    assert not wrong, f"HPAs in {namespace} differ: {wrong}"
    return [row[0] for row in rows]


def scaling_active(kube: Kube, namespace: str, deployments: list[str]) -> waits.Probe:
    """Each HPA has ScalingActive=True and a current CPU utilisation; ScalingActive=False with a reason
    other than the first metrics not being in yet fails at once."""

    def probe() -> waits.Check:
        states, pending = {}, []
        for deployment in deployments:
            hpa = hpa_for(kube, namespace, deployment)
            cond = next((c for c in hpa.status.conditions or [] if c.type == "ScalingActive"), None)
            cpu = _current_cpu(hpa)
            states[deployment] = f"ScalingActive={cond and cond.status} ({cond and cond.reason}), CPU {cpu}%"
            if cond is None or cond.status != "True" or cpu is None:
                pending.append(deployment)
                if (
                    cond is not None
                    and cond.status == "False"
                    and cond.reason
                    not in (
                        "FailedGetResourceMetric",
                        "FailedComputeMetricsReplicas",
                    )
                ):
                    return waits.failed(f"{deployment}: {cond.reason}: {cond.message}")
        detail = "; ".join(f"{d}: {s}" for d, s in states.items())
        return waits.pending(detail) if pending else waits.succeeded(detail, states)

    return probe


def expect_scaling_active(kube: Kube, namespace: str, deployments: list[str], timeout: float) -> waits.Waited:
    return waits.until(
        scaling_active(kube, namespace, deployments),
        timeout=timeout,
        interval=2,
        what=f"HPAs of {', '.join(deployments)} ScalingActive with a current CPU utilisation",
    )


def expect_replicas_ignored(app: dict, deployments: list[str]) -> None:
    """The Application ignores /spec/replicas of each Deployment and respects that when it syncs."""
    spec = app["spec"]
    ignored = {
        d.get("name")
        for d in spec.get("ignoreDifferences") or []
        if d.get("group") == "apps"
        and d.get("kind") == "Deployment"
        and (
            REPLICAS in (d.get("jsonPointers") or [])
            or ".spec.replicas" in (d.get("jqPathExpressions") or [])
        )
    }
    missing = [d for d in deployments if d not in ignored]
    assert not missing, f"{app['metadata']['name']} does not ignore the replicas of {missing}"
    options = (spec.get("syncPolicy") or {}).get("syncOptions") or []
    assert "RespectIgnoreDifferences=true" in options, (
        f"{app['metadata']['name']} syncs without RespectIgnoreDifferences=true: {options}"
    )


def expect_replica_change_stays_synced(
    kube: Kube, argocd: ArgoCDClient, app: str, namespace: str, deployment: str, hold: float, undo: UndoStack
) -> int:
    """Scale ``deployment`` by one by hand, as an HPA would (reverted afterwards): the Application stays
    Synced for ``hold`` seconds. (The HPA itself may take the replicas back meanwhile.) Returns them."""
    before = kube.deployment(namespace, deployment).spec.replicas or 1
    changed = before + 1

    def scale(n: int) -> None:
        kube.apps.patch_namespaced_deployment_scale(deployment, namespace, {"spec": {"replicas": n}})

    undo.push(f"scale {deployment} back to {before}", lambda: scale(before))
    scale(changed)
    started = time.monotonic()

    def probe() -> waits.Check:
        sync, health, _ = sync_and_health(argocd.refresh(app))
        if sync != "Synced":
            return waits.failed(f"{app} is {sync} after {deployment} was scaled to {changed}")
        return waits.succeeded(f"{app} {sync}/{health}, {time.monotonic() - started:.0f}s after the change")

    waits.consistently(probe, duration=hold, interval=3, what=f"{app} stays Synced")
    return changed
