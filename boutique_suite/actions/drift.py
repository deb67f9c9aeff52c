"""Wrong changes made by hand (drift) and forced pod deletions, with what "back to normal" means for each.

Every change records the value gitops-repo gives (read while the Application is Synced) so that recovery
is checked on the field that was changed, not on a status that may not have noticed the change yet.
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from kubernetes.client.exceptions import ApiException

from boutique_suite.clients.argocd import ArgoCDClient, sync_and_health
from boutique_suite.clients.kube import Kube
from boutique_suite.run import waits
from boutique_suite.run.undo import UndoStack

CHANGES = {
    "scale": re.compile(r'scales Deployment "(?P<name>[^"]+)" to (?P<value>\d+) replicas?'),
    "image": re.compile(r'sets the image of Deployment "(?P<name>[^"]+)" to "(?P<value>[^"]+)"'),
    "delete": re.compile(r'deletes Deployment "(?P<name>[^"]+)"'),
    "label": re.compile(
        r'changes the label "(?P<key>[^"]+)" of Deployment "(?P<name>[^"]+)" to "(?P<value>[^"]+)"'
    ),
}


@dataclass
class Drift:
    deployment: str
    description: str
    read: Callable[[], object]
    expected: object
    at_epoch: float = field(default_factory=time.time)
    at: float = field(default_factory=time.monotonic)


def _deployment(kube: Kube, namespace: str, name: str):  # type: ignore[no-untyped-def]
    try:
        return kube.deployment(namespace, name)
    except ApiException as exc:
        if exc.status == 404:
            return None
        raise


def make_drift(kube: Kube, namespace: str, change: str) -> Drift:
    """Apply the change a person made with kubectl; returns how to tell it was undone."""
    found = [(k, m) for k, pattern in CHANGES.items() if (m := pattern.fullmatch(change))]
    if not found:
        raise AssertionError(f"unknown kind of change: {change!r}")
    kind, match = found[0]
    name = match["name"]
    dep = _deployment(kube, namespace, name)
    assert dep is not None, f"Deployment {namespace}/{name} does not exist before the change"
    apps = kube.apps
    if kind == "scale":
        getter: Callable[[object], object] = lambda d: d.spec.replicas  # noqa: E731
        apps.patch_namespaced_deployment_scale(name, namespace, {"spec": {"replicas": int(match["value"])}})
    elif kind == "image":
        getter = lambda d: d.spec.template.spec.containers[0].image  # noqa: E731
        container = dep.spec.template.spec.containers[0].name
        patch = {
            "spec": {"template": {"spec": {"containers": [{"name": container, "image": match["value"]}]}}}
        }
        apps.patch_namespaced_deployment(name, namespace, patch)
    elif kind == "delete":
        getter = lambda d, uid=dep.metadata.uid: True if d.metadata.uid != uid else "the deleted one"  # noqa: E731
        apps.delete_namespaced_deployment(name, namespace)
    else:
        getter = lambda d, key=match["key"]: (d.metadata.labels or {}).get(key)  # noqa: E731
        apps.patch_namespaced_deployment(
            name, namespace, {"metadata": {"labels": {match["key"]: match["value"]}}}
        )
    expected = True if kind == "delete" else getter(dep)

    def read() -> object:
        current = _deployment(kube, namespace, name)
        return getter(current) if current is not None else "(does not exist)"

    return Drift(name, change, read, expected)


def expect_undone(drift: Drift, timeout: float) -> float:
    """Wait until the changed field has gitops-repo's value again; seconds since the change."""

    def probe() -> waits.Check:
        value = drift.read()
        detail = f"Deployment {drift.deployment}: {value!r}, gitops-repo says {drift.expected!r}"
        return waits.succeeded(detail) if value == drift.expected else waits.pending(detail)

    waits.until(probe, timeout=timeout, interval=0.5, what=f"drift undone ({drift.description})")
    return time.monotonic() - drift.at


@dataclass
class SyncWatch:
    """Samples an Application's sync status in the background; remembers every status it saw."""

    client: ArgoCDClient
    app: str
    seen: list[str] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)

    def start(self) -> SyncWatch:
        threading.Thread(target=self._loop, daemon=True, name=f"watch-{self.app}").start()
        return self

    def _sample(self) -> None:
        try:
            self.seen.append(sync_and_health(self.client.application(self.app))[0])
        except Exception:  # a missed sample only weakens the claim; the step reports how many were taken
            return

    def _loop(self) -> None:
        self._sample()
        while not self._stop.wait(0.5):
            self._sample()

    def stop(self) -> list[str]:
        if not self._stop.is_set():
            self._stop.set()
            self._sample()
        return self.seen


def force_delete_pods(kube: Kube, namespace: str, deployment: str) -> list[str]:
    dep = kube.deployment(namespace, deployment)
    selector = ",".join(f"{k}={v}" for k, v in (dep.spec.selector.match_labels or {}).items())
    names = [p.metadata.name for p in kube.pods(namespace, selector)]
    for name in names:
        kube.delete_pod(namespace, name)
    return names


def expect_pods_replaced(
    kube: Kube, namespace: str, deployment: str, deleted: list[str], timeout: float
) -> float:
    """Every deleted pod is gone, as many new pods as the Deployment wants are Ready, and the Deployment
    reports them available; seconds taken.

    The Deployment's status alone is not the answer: right after a force delete it still counts the
    deleted pods as available until the controller next syncs, so the replacements are counted here."""
    from boutique_suite.expectations import probes

    started = time.monotonic()
    dep = kube.deployment(namespace, deployment)
    selector = ",".join(f"{k}={v}" for k, v in (dep.spec.selector.match_labels or {}).items())
    wanted = dep.spec.replicas if dep.spec.replicas is not None else 1
    replacements_ready = probes.pods_running_on(kube, namespace, selector, wanted)

    def probe() -> waits.Check:
        pods = {p.metadata.name for p in kube.pods(namespace, selector)}
        back = pods & set(deleted)
        if back:
            return waits.pending(f"deleted pods still listed: {sorted(back)}")
        ready = replacements_ready()
        if ready.outcome is not waits.Outcome.SUCCEEDED:
            return waits.pending(f"replacements: {ready.detail}")
        return probes.rollout_complete(kube, namespace, deployment)()

    waits.until(
        probe,
        timeout=timeout,
        interval=0.5,
        what=f"Deployment {deployment} available again",
        wake=kube.watch_pods(namespace, selector, int(timeout) + 1),
    )
    return time.monotonic() - started


def resync(client: ArgoCDClient, app: str, timeout: float) -> None:
    """Revert of a drift scenario: when Argo CD has not healed the drift itself, sync the Application."""
    from boutique_suite.clients.argocd import wait_synced_and_healthy

    if sync_and_health(client.refresh(app))[0] != "Synced":
        client.sync(app)
    wait_synced_and_healthy(client, app, timeout)


def sync_afterwards(undo: UndoStack, client: ArgoCDClient, app: str, timeout: float) -> None:
    """The revert of a wrong change made by hand: sync ``app`` from gitops-repo and wait for it to be
    Synced and Healthy (journaled)."""
    from boutique_suite.clients.argocd import wait_synced_and_healthy

    undo.push(
        f"sync {app} from gitops-repo",
        lambda: (client.sync(app), wait_synced_and_healthy(client, app, timeout)),
        journal=("sync", {"app": app}),
    )


def expect_replicas_kept(kube: Kube, namespace: str, deployment: str, replicas: int, seconds: float) -> None:
    """The Deployment asks for ``replicas`` at every look for ``seconds`` (nothing undoes the change)."""

    def probe() -> waits.Check:
        have = kube.deployment(namespace, deployment).spec.replicas
        return waits.succeeded(f"{have}") if have == replicas else waits.failed(f"{deployment} has {have}")

    waits.consistently(probe, duration=seconds, interval=2, what=f"{deployment} keeps {replicas} replicas")


def expect_replicas_back(kube: Kube, namespace: str, deployment: str, replicas: int, timeout: float) -> None:
    """The Deployment asks for ``replicas`` again within ``timeout``."""

    def probe() -> waits.Check:
        have = kube.deployment(namespace, deployment).spec.replicas
        return waits.succeeded() if have == replicas else waits.pending(f"{deployment} has {have} replicas")

    waits.until(probe, timeout=timeout, interval=1, what=f"{deployment} back to {replicas}")
