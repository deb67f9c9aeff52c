"""A rollout that cannot finish: a pod stuck pulling its image, the Deployment's progress deadline, and
Argo CD's health verdict; and the revert that rolls it back."""

from __future__ import annotations

from boutique_suite.clients.argocd import ArgoCDClient, seconds_since, sync_and_health
from boutique_suite.clients.kube import Kube
from boutique_suite.expectations import probes
from boutique_suite.expectations.probes import AvailabilityWatch
from boutique_suite.reporting.evidence import Execution
from boutique_suite.run import waits
from boutique_suite.run.undo import UndoStack

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


def expect_degraded_after_deadline(
    client: ArgoCDClient,
    kube: Kube,
    app: str,
    namespace: str,
    deployment: str,
    committed_at: float,
    timeout: float,
) -> float:
    """Argo CD reports ``app`` Degraded because ``deployment`` exceeded its progress deadline, and not before
    that deadline (the live Deployment's own) had passed since the commit; returns seconds from the commit."""
    deadline = kube.deployment(namespace, deployment).spec.progress_deadline_seconds
    waits.until(
        degraded(client, kube, app, namespace, deployment),
        timeout=timeout,
        interval=3,
        what=f"{app} Degraded",
    )
    took = seconds_since(committed_at)
    assert took >= deadline, (
        f"{app} Degraded {took:.0f}s after the commit, before {deployment}'s {deadline}s deadline"
    )
    return took


def health_recovered(client: ArgoCDClient, app: str) -> waits.Probe:
    """After a Degraded spell: pending until Argo CD has re-assessed the Application as Healthy (its health
    lags the Deployment's status by one refresh)."""

    def probe() -> waits.Check:
        sync, health, revision = sync_and_health(client.refresh(app))
        detail = f"{app}: sync {sync}, health {health}, revision {revision[:8]}"
        return waits.succeeded(detail) if health == "Healthy" else waits.pending(detail)

    return probe


# --- a rolling update and its rollback ----------------------------------------------------------------


def running_image(kube: Kube, namespace: str, deployment: str) -> str:
    """The image the Deployment's template runs (its first container)."""
    return kube.deployment(namespace, deployment).spec.template.spec.containers[0].image


def watch_availability(kube: Kube, namespace: str, deployment: str, undo: UndoStack) -> AvailabilityWatch:
    """Record the Deployment's available replicas at every change until ``stop()`` (or the scenario's end)."""
    watch = AvailabilityWatch(kube, namespace, deployment).start()
    undo.push("stop watching availability", watch.stop)
    return watch


def expect_no_drop_below_desired(samples: list[tuple[int, int]]) -> None:
    """Every (available, desired) sample of an AvailabilityWatch had all desired replicas available."""
    assert samples, "no availability sample was recorded during the rollout"
    drops = [(available, desired) for available, desired in samples if available < desired]
    assert not drops, f"available replicas dropped below desired: {drops}"


def old_replica_sets_with_pods(replica_sets: list, dep) -> list[str]:  # type: ignore[no-untyped-def]
    """The ReplicaSets that still have pods though they are not of the Deployment's current revision."""
    return [
        rs.metadata.name
        for rs in replica_sets
        if (rs.status.replicas or 0) > 0
        and rs.metadata.annotations.get(probes.REVISION) != dep.metadata.annotations.get(probes.REVISION)
    ]


def expect_finished(kube: Kube, namespace: str, deployment: str, seconds: int) -> float:
    """The rollout completes (probes.rollout_complete) within ``seconds`` and no ReplicaSet of an earlier
    revision keeps pods; returns the seconds it took."""
    waited = waits.until(
        probes.rollout_complete(kube, namespace, deployment),
        timeout=seconds,
        interval=1,
        what=f"rollout of {deployment}",
        wake=kube.watch_deployments(namespace, seconds + 1),
    )
    dep = waited.check.value
    selector = ",".join(f"{k}={v}" for k, v in (dep.spec.selector.match_labels or {}).items())  # type: ignore[union-attr]
    old = old_replica_sets_with_pods(kube.replica_sets(namespace, selector), dep)
    assert not old, f"old ReplicaSets still have pods: {old}"
    return waited.seconds


def back_on_image(kube: Kube, namespace: str, deployment: str, image: str) -> waits.Probe:
    """Pending while the Deployment's template runs another image than ``image``; then its rollout's
    verdict (probes.rollout_complete)."""
    rollout = probes.rollout_complete(kube, namespace, deployment)

    def probe() -> waits.Check:
        current = running_image(kube, namespace, deployment)
        if current != image:
            return waits.pending(f"{deployment} runs {current}")
        return rollout()

    return probe


def expect_back_on_image(
    kube: Kube, namespace: str, deployment: str, image: str, seconds: int, execution: Execution
) -> None:
    """The Deployment runs ``image`` again, rolled out, within ``seconds`` (recorded as rollback_seconds)."""
    waited = waits.until(
        back_on_image(kube, namespace, deployment, image),
        timeout=seconds,
        interval=1,
        what=f"{deployment} back on its previous image",
    )
    execution.timing("rollback_seconds", waited.seconds, budget=seconds)


def expect_healthy_again(client: ArgoCDClient, app: str) -> None:
    """After a Degraded spell, Argo CD sees the Application Healthy again within a minute."""
    waits.until(health_recovered(client, app), timeout=60, interval=2, what=f"{app} Healthy again")


def expect_pull_backoff(kube: Kube, namespace: str, deployment: str, image: str, seconds: int) -> None:
    """A pod of the Deployment waits on pulling ``image`` within ``seconds``."""
    probe = pod_cannot_pull(kube, namespace, deployment, image)
    waits.until(probe, timeout=seconds, interval=1, what=f"a {deployment} pod in ImagePullBackOff")


def expect_old_pods_stay(kube: Kube, namespace: str, deployment: str, image: str) -> None:
    """For 10 seconds, the Deployment keeps its desired replicas available, none on ``image``."""
    waits.consistently(
        lambda: old_pods_available(kube, namespace, deployment, image),
        duration=10,
        interval=2,
        what=f"old pods of {deployment} available",
    )
