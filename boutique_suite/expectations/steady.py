"""Chaos Toolkit's steady-state hypothesis for the chaos scenarios: before, during and after the fault.

Before: the Application is Synced and Healthy and the storefront answers. During: the storefront is asked
every second; a scenario tagged ``@keeps_serving`` fails if it ever stopped answering, one tagged
``@tolerates_outage`` reports the outage. After the reverts, a snapshot of the platform's state must equal
the one taken before (``diff`` is empty): the nodes' schedulability, the suite's namespaces, the
Application's sync policy and status, what gitops-repo holds, the images the Deployments run, and whether
Argo CD's controller runs; and the storefront answers again.
"""

from __future__ import annotations

import re
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

import requests

from boutique_suite.clients.argocd import ArgoCDClient, wait_synced_and_healthy
from boutique_suite.clients.kube import Kube
from boutique_suite.context import sites
from boutique_suite.expectations import gateway, storefront
from boutique_suite.reporting import platform_screens
from boutique_suite.run import runlabel, waits
from boutique_suite.run.targets import Target


def snapshot(target: Target, kube: Kube, argocd: ArgoCDClient | None, app: str) -> dict[str, Any]:
    """Without ``argocd`` (a platform below phase 4): the nodes and the namespaces only. The namespaces of
    the reading run itself are left out: its scenario fixtures remove them."""
    namespaces = kube.core.list_namespace(label_selector=runlabel.leftovers_selector(kube.run_id)).items
    state: dict[str, Any] = {
        "nodes": {
            node.metadata.name: {
                "unschedulable": bool(node.spec.unschedulable),
                "fault_by": (node.metadata.annotations or {}).get(runlabel.FAULT_BY),
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
        "gitops-repo tree": sites.gitops_repo(target).tree(),
        "images": {
            dep.metadata.name: [c.image for c in dep.spec.template.spec.containers]
            for dep in kube.apps.list_namespaced_deployment(target.namespaces.dev).items
        },
        "argocd controller running": sites.site_for(target).controller_running(kube),
    }


def diff(before: dict[str, Any], after: dict[str, Any]) -> dict[str, tuple[Any, Any]]:
    """What differs, by key: {key: (before, after)}; empty when the platform is as it was."""
    return {
        key: (before.get(key), after.get(key))
        for key in before.keys() | after.keys()
        if before.get(key) != after.get(key)
    }


KEEPS_SERVING = "keeps_serving"
# What @keeps_serving tolerates: a storefront that stops answering for longer than this (from its first failed
# answer to the next good one) did not keep serving; one slow or failed answer on a loaded machine did.
KEEPS_SERVING_MAX_OUTAGE = 5.0
TOLERATES_OUTAGE = "tolerates_outage"
TOLERANCES = (KEEPS_SERVING, TOLERATES_OUTAGE)


@dataclass(frozen=True)
class During:
    """What the storefront did while the fault was in place."""

    probes: int
    failed: int
    longest_outage: float  # seconds from the first failed answer to the next good one
    reasons: tuple[str, ...] = ()  # what the failed answers were (HTTP 503, ReadTimeout, ...)

    def describe(self) -> str:
        if not self.probes:
            return "the storefront was not asked during the fault"
        answered = (self.probes - self.failed) / self.probes
        told = (
            f"the storefront answered {self.probes - self.failed} of {self.probes} requests during the fault "
            f"({answered:.0%}); longest outage {self.longest_outage:.1f} s"
        )
        return f"{told} ({', '.join(sorted(set(self.reasons)))})" if self.reasons else told


def watch_service_name(run_id: str) -> str:
    """The LoadBalancer the lab watches the storefront through: one name per scenario (the previous
    scenario's Service may still be going away), a valid DNS label."""
    name = f"steady-{secrets.token_hex(2)}-{run_id}"
    return re.sub(r"[^a-z0-9-]", "-", name.lower())[:63].rstrip("-")


@dataclass
class StorefrontWatch:
    """GET the storefront's home page every ``interval`` seconds in the background, until stopped."""

    url: str
    virtual_host: str | None = None
    interval: float = 1.0
    samples: list[tuple[float, bool]] = field(default_factory=list)
    reasons: list[str] = field(default_factory=list)
    _halt: Callable[[], None] | None = None

    def start(self) -> StorefrontWatch:
        self._halt = storefront.repeat_in_background(self._ask, self.interval, "steady-state-watch")
        return self

    def _ask(self) -> None:
        headers = {"Host": self.virtual_host} if self.virtual_host else {}
        try:
            answer = requests.get(f"{self.url}/", headers=headers, timeout=3)
            ok = answer.status_code == 200 and storefront.HOME_PAGE_MARK in answer.text
            if not ok:
                self.reasons.append(f"HTTP {answer.status_code}")
        except requests.RequestException as exc:
            ok = False
            self.reasons.append(type(exc).__name__)
        self.samples.append((time.monotonic(), ok))

    def stop(self) -> During:
        if self._halt:
            self._halt()
        return replace(summarise(self.samples), reasons=tuple(self.reasons))


def summarise(samples: list[tuple[float, bool]]) -> During:
    longest, down_since = 0.0, None
    for at, ok in samples:
        if not ok and down_since is None:
            down_since = at
        elif ok and down_since is not None:
            longest, down_since = max(longest, at - down_since), None
    if down_since is not None:
        longest = max(longest, samples[-1][0] - down_since)
    return During(len(samples), sum(not ok for _, ok in samples), longest)


@dataclass
class SteadyState:
    """Chaos Toolkit's steady-state hypothesis: taken before the fault, watched during it, and after the
    reverts it must hold again (waited for: Argo CD and the controllers need a moment)."""

    target: Target
    kube: Kube
    argocd: ArgoCDClient | None
    app: str
    before: dict[str, Any]
    watch: StorefrontWatch | None = None

    def capture_failure_screens(self) -> None:
        """The storefront and Argo CD's Application as they were when the scenario failed."""
        watch = self.watch
        url, host = (watch.url, watch.virtual_host) if watch is not None else (None, None)
        platform_screens.at_failure(self.argocd, self.app, url, host)

    @classmethod
    def take(
        cls, target: Target, kube: Kube, argocd: ArgoCDClient | None, app: str, storefront: Any = None
    ) -> SteadyState:
        """The hypothesis holds before the fault: the Application Synced and Healthy (waited for, as an
        earlier scenario's pods may still be settling) and the storefront answers (``storefront``: a
        ``load.Storefront``, already answering); then the snapshot, and the watch starts."""
        if argocd is not None:
            wait_synced_and_healthy(argocd, app, target.timeouts.rollout)
        watch = StorefrontWatch(storefront.url, storefront.virtual_host).start() if storefront else None
        return cls(target, kube, argocd, app, snapshot(target, kube, argocd, app), watch)

    def during(self) -> During | None:
        """Stop watching the storefront; what it did since the hypothesis was taken."""
        return self.watch.stop() if self.watch else None

    def expect_serving_again(self, timeout: float) -> float:
        if self.watch is None:
            return 0.0
        address = self.watch.url.removeprefix("http://")
        return gateway.expect_storefront_at(address, timeout, virtual_host=self.watch.virtual_host)

    def expect_restored(self, timeout: float) -> float:
        """Seconds until the platform is as it was; WaitFailed names what did not come back."""

        def restored() -> waits.Check:
            try:
                now = snapshot(self.target, self.kube, self.argocd, self.app)
            except (requests.ConnectionError, requests.Timeout) as exc:  # argocd-server's pod still moving
                return waits.pending(f"Argo CD's API did not answer: {type(exc).__name__}")
            left = diff(self.before, now)
            return waits.pending(f"not as before the fault: {left}") if left else waits.succeeded()

        return waits.until(
            restored, timeout=timeout, interval=2, what="the steady state after the reverts"
        ).seconds
