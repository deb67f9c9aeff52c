"""Disruptions the platform must ride out: Argo CD's application controller stopped for a while, a worker
drained. Each registers its revert on the scenario's UndoStack before it acts, and checks that it took
effect; the watches and expectations say what "rode it out" means.
"""

from __future__ import annotations

import datetime
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from boutique_suite.actions import faults
from boutique_suite.clients import kubectl
from boutique_suite.clients.argocd import ArgoCDClient, synced_and_healthy
from boutique_suite.clients.kube import Kube
from boutique_suite.context.sites import kubectl_of, site_for
from boutique_suite.expectations import probes
from boutique_suite.run import waits
from boutique_suite.run.targets import Target
from boutique_suite.run.undo import UndoStack

CONTROLLER = "argocd-application-controller"


# --- availability of every Deployment of a namespace ----------------------------------------------------


@dataclass
class NamespaceAvailability:
    """(deployment, available, desired) of every Deployment in ``namespace``: once at start, then at each
    change (a watch), until stop(). Gaps in the watch are covered by re-listing when it reconnects."""

    kube: Kube
    namespace: str
    samples: list[tuple[str, int, int]] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def _record(self, dep) -> None:  # type: ignore[no-untyped-def]
        desired = dep.spec.replicas if dep.spec.replicas is not None else 1
        self.samples.append((dep.metadata.name, dep.status.available_replicas or 0, desired))

    def _list(self) -> None:
        for dep in self.kube.apps.list_namespaced_deployment(self.namespace).items:
            self._record(dep)

    def start(self) -> NamespaceAvailability:
        self._list()
        self._thread = threading.Thread(target=self._loop, daemon=True, name=f"avail-{self.namespace}")
        self._thread.start()
        return self

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                self._list()
                for event in self.kube.watch_deployments(self.namespace, 5):
                    self._record(event["object"])  # type: ignore[index]
                    if self._stop.is_set():
                        return
            except Exception:  # a broken watch: list again and go on watching
                time.sleep(0.5)

    def stop(self) -> list[tuple[str, int, int]]:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
        self._list()
        return self.samples

    def drops(self) -> list[tuple[str, int, int]]:
        return [s for s in self.samples if s[1] < s[2]]


def expect_never_dropped(watch: NamespaceAvailability) -> int:
    samples = watch.stop()
    assert samples, f"no availability sample of the Deployments in {watch.namespace} was taken"
    drops = watch.drops()
    assert not drops, f"available replicas dropped below desired (deployment, available, desired): {drops}"
    return len(samples)


# --- the Argo CD application controller stopped for a while ---------------------------------------------


@dataclass
class ControllerOutage:
    seconds: float
    stopped_epoch: float
    restarted_epoch: float
    restarted_at: float  # monotonic


def _reconciled_at(client: ArgoCDClient, app: str) -> str | None:
    return client.application(app).get("status", {}).get("reconciledAt")


def _epoch(timestamp: str) -> float:
    return datetime.datetime.fromisoformat(timestamp.replace("Z", "+00:00")).timestamp()


def start_controller(target: Target, kube: Kube, replicas: int) -> None:
    """Start the application controller again (a running one is left alone)."""
    site_for(target).start_controller(kube, replicas)


def stop_controller(target: Target, kube: Kube, undo: UndoStack) -> Callable[[], None]:
    """Stop the application controller (its start journaled first); returns the start."""
    site = site_for(target)
    replicas = site.controller_replicas(kube)

    def start() -> None:
        start_controller(target, kube, replicas)

    undo.push(
        "start the Argo CD application controller",
        start,
        journal=("start_argocd_controller", {"replicas": replicas}),
    )
    site.stop_controller(kube)
    return start


def stop_argocd_controller(
    target: Target, kube: Kube, client: ArgoCDClient, app: str, seconds: float, undo: UndoStack
) -> ControllerOutage:
    """Stop the application controller, keep it stopped ``seconds``, start it again. Fails when the
    Application was reconciled meanwhile (then the controller was not really stopped)."""
    start = stop_controller(target, kube, undo)
    stopped_epoch = time.time()
    at_stop = _reconciled_at(client, app)
    time.sleep(seconds)
    at_end = _reconciled_at(client, app)
    start()
    restarted_epoch, restarted_at = time.time(), time.monotonic()
    assert at_end == at_stop, (
        f"Application {app} was reconciled at {at_end} while the controller was stopped (since "
        f"{at_stop}): another controller was running"
    )
    return ControllerOutage(seconds, stopped_epoch, restarted_epoch, restarted_at)


def expect_reconciled_after_restart(
    client: ArgoCDClient, app: str, outage: ControllerOutage, seconds: float
) -> float:
    """Synced and Healthy as reconciled by the restarted controller; seconds since the restart. Each look
    asks for a refresh, as a person presses Refresh: the restarted controller must do that comparison (it
    would otherwise wait for its next periodic one, up to timeout.reconciliation: 3 minutes by default)."""
    healthy = synced_and_healthy(client, app)

    def probe() -> waits.Check:
        at = client.refresh(app).get("status", {}).get("reconciledAt")
        if at is None or _epoch(at) < int(outage.restarted_epoch):
            return waits.pending(f"{app} last reconciled at {at}, before the restart")
        return healthy()

    remaining = seconds - (time.monotonic() - outage.restarted_at)
    waits.until(probe, timeout=max(remaining, 1), interval=1, what=f"{app} reconciled after the restart")
    return time.monotonic() - outage.restarted_at


# --- a worker drained -----------------------------------------------------------------------------------


def drain(target: Target, kube: Kube, node: str, undo: UndoStack) -> float:
    """Cordon ``node`` (marked with the run, so an interrupted run is undone later) and drain it with the
    real ``kubectl drain`` (evictions, respecting PodDisruptionBudgets; pods of no controller are refused,
    never forced); seconds the drain took."""
    undo.push(f"uncordon {node}", lambda: faults.uncordon(kube, node), journal=("uncordon", {"node": node}))
    faults.cordon(kube, node)
    timeout = target.timeouts.rollout
    drain = ("drain", node, "--ignore-daemonsets", "--delete-emptydir-data", f"--timeout={timeout}s")
    started = time.monotonic()
    try:
        kubectl_of(target).run(*drain)
    except kubectl.KubectlError as exc:
        raise AssertionError(f"kubectl drain {node} failed: {exc}") from None
    return time.monotonic() - started


def drain_with_workload(
    target: Target, kube: Kube, namespace: str, node: str, undo: UndoStack
) -> tuple[list[str], float]:
    """Drain ``node`` while pods of ``namespace`` run on it: (the pods it had, seconds the drain took)."""
    on_node = spread_onto(kube, namespace, node, target.timeouts.rollout)
    seconds = drain(target, kube, node, undo)
    left = sorted(set(on_node) & set(_pods_on(kube, namespace, node)))
    assert not left, f"pods still on {node} after the drain: {left}"
    return on_node, seconds


def _pods_on(kube: Kube, namespace: str, node: str) -> list[str]:
    return sorted(
        p.metadata.name
        for p in kube.core.list_namespaced_pod(namespace).items
        if p.spec.node_name == node and not p.metadata.deletion_timestamp
    )


def spread_onto(kube: Kube, namespace: str, node: str, timeout: float) -> list[str]:
    """The pods of ``namespace`` on ``node``, so a drain of it has something to move. When none runs there
    (an earlier drain left everything on the other worker; nothing rebalances by itself), the pods on the
    other nodes are deleted once and their ReplicaSets' replacements spread by the scheduler."""
    if on_node := _pods_on(kube, namespace, node):
        return on_node
    for pod in kube.core.list_namespaced_pod(namespace).items:
        if not pod.metadata.deletion_timestamp:
            kube.delete_pod(namespace, pod.metadata.name)

    def probe() -> waits.Check:
        for dep in kube.apps.list_namespaced_deployment(namespace).items:
            rolled = probes.rollout_complete(kube, namespace, dep.metadata.name)()
            if rolled.outcome is not waits.Outcome.SUCCEEDED:
                return rolled
        pods = _pods_on(kube, namespace, node)
        return (
            waits.succeeded(f"{len(pods)} pods on {node}", pods)
            if pods
            else waits.failed(f"the scheduler placed no pod of {namespace} on {node}")
        )

    return waits.until(
        probe, timeout=timeout, interval=1, what=f"pods of {namespace} spread onto {node}"
    ).check.value  # type: ignore[return-value]


def all_on(kube: Kube, namespace: str, node: str) -> waits.Probe:
    """Every Deployment of ``namespace`` rolled out with all of its pods on ``node``."""

    def probe() -> waits.Check:
        deployments = kube.apps.list_namespaced_deployment(namespace).items
        if not deployments:
            return waits.failed(f"no Deployment in {namespace}")
        for dep in deployments:
            name = dep.metadata.name
            rolled = probes.rollout_complete(kube, namespace, name)()
            if rolled.outcome is not waits.Outcome.SUCCEEDED:
                return rolled
            selector = ",".join(f"{k}={v}" for k, v in (dep.spec.selector.match_labels or {}).items())
            elsewhere = [
                f"{p.metadata.name} on {p.spec.node_name}"
                for p in kube.pods(namespace, selector)
                if not p.metadata.deletion_timestamp and p.spec.node_name != node
            ]
            if elsewhere:
                return waits.pending(f"{name}: {elsewhere}")
        return waits.succeeded(f"{len(deployments)} Deployments available on {node}")

    return probe


def expect_all_on(kube: Kube, namespace: str, node: str, timeout: float) -> waits.Waited:
    return waits.until(
        all_on(kube, namespace, node),
        timeout=timeout,
        interval=1,
        what=f"every Deployment of {namespace} on {node}",
        wake=kube.watch_pods(namespace, "", int(timeout) + 1),
    )


def expect_pods_on(kube: Kube, namespace: str, selector: str, node: str, timeout: float) -> waits.Waited:
    """At least one Running pod of ``selector`` on ``node``."""

    def probe() -> waits.Check:
        pods = kube.pods(namespace, selector)
        placement = {p.metadata.name: (p.spec.node_name, p.status.phase) for p in pods}
        on_node = [n for n, (where, phase) in placement.items() if where == node and phase == "Running"]
        return waits.succeeded(str(on_node)) if on_node else waits.pending(f"placement {placement}")

    return waits.until(probe, timeout=timeout, interval=0.5, what=f"a pod on {node}")


def watch_availability(kube: Kube, namespace: str, undo: UndoStack) -> NamespaceAvailability:
    """Start recording the availability of every Deployment in ``namespace``; its stop is on ``undo``."""
    availability = NamespaceAvailability(kube, namespace).start()
    undo.push("stop watching availability", availability.stop)
    return availability
