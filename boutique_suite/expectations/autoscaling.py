"""The Boutique's HorizontalPodAutoscalers as gitops-repo declares them, the HPA controller's view of them,
and Argo CD leaving the replicas they own alone."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field

from kubernetes import client

from boutique_suite.clients.argocd import ArgoCDClient, sync_and_health
from boutique_suite.clients.kube import Kube
from boutique_suite.expectations import probes
from boutique_suite.run import waits
from boutique_suite.run.undo import UndoStack

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


def scaled(
    kube: Kube, namespace: str, deployment: str, at_least: int | None, exactly: int | None
) -> waits.Probe:
    """The HPA (named as its Deployment) wants at least / exactly that many replicas and the Deployment has
    them available (exactly: no more pods either)."""

    def probe() -> waits.Check:
        hpa = kube.hpa(namespace, deployment)
        dep = kube.deployment(namespace, deployment)
        desired, available = hpa.status.desired_replicas or 0, dep.status.available_replicas or 0
        detail = f"HPA desired {desired}, deployment available {available}, current CPU {_current_cpu(hpa)}%"
        ok = (
            (desired >= at_least and available >= at_least)
            if at_least
            else (desired == exactly and available == exactly and (dep.status.replicas or 0) == exactly)
        )
        return waits.succeeded(detail) if ok else waits.pending(detail)

    return probe


def expect_scaled(
    kube: Kube, namespace: str, deployment: str, at_least: int | None, exactly: int | None, timeout: float
) -> None:
    waits.until(
        scaled(kube, namespace, deployment, at_least, exactly),
        timeout=timeout,
        what=f"HPA {deployment}",
        interval=2,
        wake=kube.watch_deployments(namespace, int(timeout) + 1),
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

    undo.push(
        f"scale {deployment} back to {before}",
        lambda: scale(before),
        journal=("scale", {"namespace": namespace, "deployment": deployment, "replicas": before}),
    )
    scale(changed)
    started = time.monotonic()

    def probe() -> waits.Check:
        sync, health, _ = sync_and_health(argocd.refresh(app))
        if sync != "Synced":
            return waits.failed(f"{app} is {sync} after {deployment} was scaled to {changed}")
        return waits.succeeded(f"{app} {sync}/{health}, {time.monotonic() - started:.0f}s after the change")

    waits.consistently(probe, duration=hold, interval=3, what=f"{app} stays Synced")
    return changed


# --- under load: replicas second by second, new replicas, the maximum ---------------------------------


@dataclass
class ReplicaSample:
    at: float  # epoch seconds
    replicas: int  # the Deployment's pods (status.replicas), terminating ones excluded
    desired: int  # spec.replicas, as the HPA set it


@dataclass
class ReplicaWatch:
    """Samples a Deployment's replicas every ``interval`` seconds in the background until stopped."""

    kube: Kube
    namespace: str
    deployment: str
    interval: float = 1.0
    samples: list[ReplicaSample] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def start(self) -> ReplicaWatch:
        self._thread = threading.Thread(target=self._loop, name=f"replicas-{self.deployment}", daemon=True)
        self._thread.start()
        return self

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                dep = self.kube.deployment(self.namespace, self.deployment)
                self.samples.append(
                    ReplicaSample(time.time(), dep.status.replicas or 0, dep.spec.replicas or 0)
                )
            except Exception as exc:  # a missed sample is reported, never fatal to the load
                self.errors.append(f"{time.strftime('%H:%M:%S')}: {exc.__class__.__name__}: {exc}")
            self._stop.wait(self.interval)

    def stop(self) -> list[ReplicaSample]:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
        return self.samples

    def most(self) -> ReplicaSample | None:
        return max(self.samples, key=lambda s: max(s.replicas, s.desired), default=None)

    def csv(self) -> str:
        rows = [
            f"{time.strftime('%H:%M:%S', time.localtime(s.at))},{s.replicas},{s.desired}"
            for s in self.samples
        ]
        return "\n".join(["time,pods,desired", *rows])


def expect_at_most(watch: ReplicaWatch, most: int) -> int:
    """No sample of the watch had more than ``most`` replicas (pods or desired); the largest seen."""
    assert watch.samples, f"no replica sample of {watch.deployment} was taken: {watch.errors[-3:]}"
    peak = watch.most()
    assert peak is not None
    largest = max(peak.replicas, peak.desired)
    assert largest <= most, (
        f"Deployment {watch.deployment} had {peak.replicas} pods ({peak.desired} desired) at "
        f"{time.strftime('%H:%M:%S', time.localtime(peak.at))}, more than {most}"
    )
    return largest


def _ready_at(pod: client.V1Pod) -> float | None:
    cond = next((c for c in pod.status.conditions or [] if c.type == "Ready" and c.status == "True"), None)
    return cond.last_transition_time.timestamp() if cond and cond.last_transition_time else None


def new_replicas_ready(
    kube: Kube, namespace: str, deployment: str, since: float, within: float
) -> waits.Probe:
    """Every pod of ``deployment`` created after ``since`` (epoch) became Ready within ``within`` seconds of
    its creation; fails as soon as one is late, pending while one is young and not Ready yet."""

    def probe() -> waits.Check:
        dep = kube.deployment(namespace, deployment)
        selector = ",".join(f"{k}={v}" for k, v in (dep.spec.selector.match_labels or {}).items())
        pods = [
            p
            for p in kube.pods(namespace, selector)
            if p.metadata.creation_timestamp.timestamp() >= since and not p.metadata.deletion_timestamp
        ]
        if not pods:
            return waits.failed(f"no replica of {deployment} was created after the load started")
        took: dict[str, float] = {}
        for pod in pods:
            created = pod.metadata.creation_timestamp.timestamp()
            ready = _ready_at(pod)
            if ready is None:
                if time.time() - created > within:
                    return waits.failed(f"{pod.metadata.name} is not Ready {within:.0f} s after creation")
                return waits.pending(f"{pod.metadata.name} not Ready yet")
            took[pod.metadata.name] = ready - created
        late = {name: s for name, s in took.items() if s > within}
        if late:
            return waits.failed(f"replicas Ready later than {within:.0f} s after creation: {late}")
        return waits.succeeded(
            ", ".join(f"{name} Ready {s:.0f} s after creation" for name, s in took.items()), took
        )

    return probe


def hpa_condition(kube: Kube, namespace: str, hpa: str, kind: str, status: str, reason: str) -> waits.Probe:
    def probe() -> waits.Check:
        found = kube.hpa(namespace, hpa)
        cond = next((c for c in found.status.conditions or [] if c.type == kind), None)
        detail = f"{kind}={cond and cond.status} ({cond and cond.reason}: {cond and cond.message})"
        if cond is not None and cond.status == status and cond.reason == reason:
            return waits.succeeded(detail)
        return waits.pending(detail)

    return probe


def expect_new_replicas_ready(
    kube: Kube, namespace: str, deployment: str, since: float, within: float
) -> dict[str, float]:
    """Every replica of ``deployment`` created after ``since`` (epoch) was Ready within ``within`` s."""
    waited = waits.until(
        new_replicas_ready(kube, namespace, deployment, since, within),
        timeout=within + 5,
        interval=1,
        what=f"new replicas of {deployment} Ready within {within:g} s of creation",
    )
    return waited.check.value  # type: ignore[return-value]


def expect_replicas_hold(kube: Kube, namespace: str, deployment: str, replicas: int, seconds: float) -> None:
    """The Deployment wants and has exactly ``replicas`` pods at every look for ``seconds``. Availability is
    reported, not required: under a load beyond the HPA's maximum an overloaded pod may miss a readiness
    probe, and that is the load's effect, not a change in the replica count."""

    def probe() -> waits.Check:
        dep = kube.deployment(namespace, deployment)
        have = (dep.spec.replicas, dep.status.replicas)
        detail = f"{deployment}: desired {have[0]}, pods {have[1]}, available {dep.status.available_replicas}"
        return waits.succeeded(detail) if have == (replicas, replicas) else waits.failed(detail)

    waits.consistently(probe, duration=seconds, interval=2, what=f"{deployment} at exactly {replicas}")


def expect_scaling_limited(kube: Kube, namespace: str, deployment: str, timeout: float) -> None:
    """The HPA says ScalingLimited=True, TooManyReplicas: it wants more than its maximum."""
    name = hpa_for(kube, namespace, deployment).metadata.name
    waits.until(
        hpa_condition(kube, namespace, name, "ScalingLimited", "True", "TooManyReplicas"),
        timeout=timeout,
        interval=2,
        what=f"HPA {name} ScalingLimited because of its maximum",
    )


def hpa_holds(kube: Kube, namespace: str, deployment: str, replicas: int) -> waits.Probe:
    """The HPA of ``deployment`` has and wants ``replicas``, and the Deployment's rollout is complete."""

    def probe() -> waits.Check:
        hpa = hpa_for(kube, namespace, deployment)
        detail = (
            f"HPA {deployment}: current {hpa.status.current_replicas}, desired {hpa.status.desired_replicas}"
        )
        if hpa.status.current_replicas == replicas and hpa.status.desired_replicas == replicas:
            return probes.rollout_complete(kube, namespace, deployment)()
        return waits.pending(detail)

    return probe


def wait_hpa_holds(
    kube: Kube, namespace: str, deployment: str, replicas: int, timeout: float
) -> waits.Waited:
    """Wait until the HPA of ``deployment`` holds ``replicas`` and the Deployment is rolled out."""
    return waits.until(
        hpa_holds(kube, namespace, deployment, replicas),
        timeout=timeout,
        interval=2,
        what=f"HPA of {deployment} at {replicas}",
    )


def expect_hpas_own_replicas(
    kube: Kube,
    argocd: ArgoCDClient,
    app: str,
    namespace: str,
    deployments: list[str],
    hold_seconds: float,
    undo: UndoStack,
) -> None:
    """The Application ignores the replicas of ``deployments``, and changing the first one's replicas by
    hand leaves it Synced for ``hold_seconds``."""
    expect_replicas_ignored(argocd.application(app), deployments)
    expect_replica_change_stays_synced(kube, argocd, app, namespace, deployments[0], hold_seconds, undo)
