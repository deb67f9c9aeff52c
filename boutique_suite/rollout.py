"""A rollout that cannot finish: a pod stuck pulling its image, the Deployment's progress deadline, and
Argo CD's health verdict; and the revert that rolls it back."""

from __future__ import annotations

from boutique_suite import waits
from boutique_suite.argocd import ArgoCDClient, sync_and_health
from boutique_suite.kube import Kube

PULL_FAILURES = ("ImagePullBackOff", "ErrImagePull")


def _selector(kube: Kube, namespace: str, deployment: str) -> str:
    labels = kube.deployment(namespace, deployment).spec.selector.match_labels or {}
    return ",".join(f"{k}={v}" for k, v in labels.items())


def pod_cannot_pull(kube: Kube, namespace: str, deployment: str, image: str) -> waits.Probe:
    """Succeeds with the name of a pod of ``deployment`` whose container waits on pulling ``image``."""
    selector = _selector(kube, namespace, deployment)

    def probe() -> waits.Check:
        for pod in kube.pods(namespace, selector):
            for status in pod.status.container_statuses or []:
                waiting = status.state.waiting if status.state else None
                if status.image == image and waiting and waiting.reason in PULL_FAILURES:
                    return waits.succeeded(f"{pod.metadata.name}: {waiting.reason} ({waiting.message})", pod)
        return waits.pending(f"no pod of {deployment} is failing to pull {image} yet")

    return probe


def old_pods_available(kube: Kube, namespace: str, deployment: str, image: str) -> waits.Check:
    """The Deployment still has its desired replicas available, all of them running an image other
    than the unpullable ``image``."""
    dep = kube.deployment(namespace, deployment)
    desired, available = dep.spec.replicas or 0, dep.status.available_replicas or 0
    ready_new = [
        p.metadata.name
        for p in kube.pods(namespace, _selector(kube, namespace, deployment))
        if any(s.image == image and s.ready for s in p.status.container_statuses or [])
    ]
    if available < desired or ready_new:
        return waits.failed(f"{deployment}: {available}/{desired} available; ready with {image}: {ready_new}")
    return waits.succeeded(f"{deployment}: {available}/{desired} available on the old image")


def degraded(client: ArgoCDClient, kube: Kube, app: str, namespace: str, deployment: str) -> waits.Probe:
    """Argo CD reports the Application Degraded because the Deployment exceeded its progress deadline."""

    def probe() -> waits.Check:
        _, health, _ = sync_and_health(client.refresh(app))
        conditions = kube.deployment(namespace, deployment).status.conditions or []
        progressing = next((c for c in conditions if c.type == "Progressing"), None)
        reason = progressing.reason if progressing else "none"
        if health == "Degraded" and reason == "ProgressDeadlineExceeded":
            return waits.succeeded(f"{app} Degraded; {deployment} Progressing={reason}")
        return waits.pending(f"{app} health {health}; {deployment} Progressing reason {reason}")

    return probe


def health_recovered(client: ArgoCDClient, app: str) -> waits.Probe:
    """After a Degraded spell: pending until Argo CD has re-assessed the Application as Healthy (its health
    lags the Deployment's status by one refresh)."""

    def probe() -> waits.Check:
        sync, health, revision = sync_and_health(client.refresh(app))
        detail = f"{app}: sync {sync}, health {health}, revision {revision[:8]}"
        return waits.succeeded(detail) if health == "Healthy" else waits.pending(detail)

    return probe
