"""Layer 4, GitOps: Kustomize base/overlays, ConfigMap/Secret split, Applications with auto-sync + self-heal.

lab: gitops-repo's AppProject and Application "online-boutique-dev" (repo URL pointed at the lab's git
server) applied to the lab's real Argo CD, which syncs overlays/dev; the layer is ready when the
Application is Synced and Healthy.
onprem: the app-of-apps. Layer 3 applied its root Application ("platform", gitops bootstrap/), which syncs
platform/ (the projects and one Application per component). The layer is ready when the root and every
Application it owns are Synced and Healthy; an Application the target names in
``argocd.not_expected`` (one the site cannot run, with the reason) is reported with that reason instead. A
Degraded Application, a failed sync or an Error condition breaks the layer at once, with Argo CD's view of
each as evidence.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import requests

from boutique_suite.clients.argocd import ArgoCDClient, ArgoCDUnavailable, synced_and_healthy
from boutique_suite.context.sites import through_site
from boutique_suite.reporting import broken_evidence
from boutique_suite.run import waits
from boutique_suite.run.targets import Target
from provisioning.layer import LayerBroken, LayerState, broken

PHASE = 4
NAME = "GitOps"
NEEDS = (3,)
ROOT_APPLICATION = "platform"  # gitops bootstrap/platform.yaml


needs, check, ensure = through_site(PHASE)


def client(target: Target) -> ArgoCDClient:
    assert target.argocd is not None
    access = target.argocd
    return ArgoCDClient.login(access.url, access.username, access.password(), access.ca_path)


def check_application(target: Target) -> LayerState:
    """Ready when the target's Application is Synced and Healthy."""
    app = target.application
    try:
        check = synced_and_healthy(client(target), app)()
    except (ArgoCDUnavailable, OSError) as exc:
        return LayerState(PHASE, NAME, False, str(exc))
    except Exception as exc:  # the Application does not exist yet
        return LayerState(PHASE, NAME, False, f"{app}: {exc}")
    return LayerState(PHASE, NAME, check.outcome is waits.Outcome.SUCCEEDED, check.detail)


def broken_application(target: Target, client: ArgoCDClient, why: str) -> LayerBroken:
    """Layer 4 broken: the target's Application did not become Synced and Healthy. The evidence is Argo CD's
    view of it and the pods of its namespace that are not Ready (events, logs)."""
    from boutique_suite.clients.kube import ClusterUnreachable, connect_to
    from boutique_suite.reporting import broken_evidence

    evidence = broken_evidence.application(client.application, target.application)
    try:
        bad = broken_evidence.unhealthy_resources(client.application(target.application))
    except (ArgoCDUnavailable, OSError):
        bad = []
    if bad:  # the cause names what is unhealthy, not only that the Application is
        more = f" and {len(bad) - 3} more" if len(bad) > 3 else ""
        why = f"{why.rstrip('; ')}; " + "; ".join(bad[:3]) + more
    try:
        kube = connect_to(target, run_id="check")
    except ClusterUnreachable as exc:
        evidence["cluster"] = str(exc)
    else:
        evidence |= broken_evidence.pods_not_ready(kube, target.namespaces.dev)
    return broken(PHASE, NAME, why, evidence)


# --- on-prem: the app-of-apps -------------------------------------------------------------------------


@dataclass
class AppOfApps:
    """Where the root Application and the Applications it owns stand, each with Argo CD's own words."""

    ready: dict[str, str] = field(default_factory=dict)
    waiting: dict[str, str] = field(default_factory=dict)
    failed: dict[str, str] = field(default_factory=dict)
    not_expected: dict[str, str] = field(default_factory=dict)

    @property
    def outcome(self) -> waits.Outcome:
        if self.failed:
            return waits.Outcome.FAILED
        return waits.Outcome.PENDING if self.waiting else waits.Outcome.SUCCEEDED

    def detail(self) -> str:
        parts = [f"failed: {v}" for v in self.failed.values()]
        parts += [f"waiting: {v}" for v in self.waiting.values()]
        parts += [f"{name} not expected here: {why}" for name, why in self.not_expected.items()]
        parts.append(f"{len(self.ready)} Synced and Healthy ({', '.join(sorted(self.ready))})")
        return "; ".join(parts)


def owned_applications(root: dict) -> list[str]:
    """The Applications the root Application manages, as its status lists them (before they exist, too)."""
    resources = (root.get("status") or {}).get("resources") or []
    return sorted(r["name"] for r in resources if r.get("kind") == "Application")


def _probe_one(client: ArgoCDClient, name: str) -> waits.Check:
    try:
        return synced_and_healthy(client, name)()
    except requests.HTTPError as exc:
        if exc.response is not None and exc.response.status_code in (403, 404):
            return waits.pending(f"{name}: not created yet")  # Argo CD answers 403 for an unknown app
        raise


def app_of_apps(
    client: ArgoCDClient, not_expected: dict[str, str], root: str = ROOT_APPLICATION
) -> AppOfApps:
    """The root and each Application it owns, sorted into ready / waiting / failed / not expected."""
    state = AppOfApps()
    check = _probe_one(client, root)
    names = owned_applications(check.value) if isinstance(check.value, dict) else []
    if check.outcome is waits.Outcome.PENDING and not names:
        try:
            names = owned_applications(client.application(root))
        except requests.HTTPError:
            names = []
    for name, one in [(root, check), *((n, _probe_one(client, n)) for n in names)]:
        if name in not_expected and one.outcome is not waits.Outcome.SUCCEEDED:
            state.not_expected[name] = not_expected[name]
        elif one.outcome is waits.Outcome.SUCCEEDED:
            state.ready[name] = one.detail
        elif one.outcome is waits.Outcome.FAILED:
            state.failed[name] = one.detail
        else:
            state.waiting[name] = one.detail
    return state


def _not_expected(target: Target) -> dict[str, str]:
    assert target.argocd is not None
    return dict(target.argocd.not_expected)


def check_onprem(target: Target) -> LayerState:
    """Ready when the root Application and every Application it owns are Synced and Healthy (or named by the
    target as not expected there, with the reason)."""
    try:
        state = app_of_apps(client(target), _not_expected(target))
    except (ArgoCDUnavailable, OSError, requests.HTTPError) as exc:
        return LayerState(PHASE, NAME, False, str(exc))
    components = {name: "Synced and Healthy" for name in state.ready} | {
        name: f"not expected: {why}" for name, why in state.not_expected.items()
    }
    return LayerState(PHASE, NAME, state.outcome is waits.Outcome.SUCCEEDED, state.detail(), components)


def ensure_onprem(target: Target) -> LayerState:
    """Ask Argo CD to look at gitops-repo now, then wait for the app-of-apps (the target's rollout timeout
    for each Application it owns, at most); broken with each unready Application's evidence otherwise."""
    argocd = client(target)
    with_reasons = _not_expected(target)
    try:
        argocd.refresh(ROOT_APPLICATION)
    except requests.HTTPError as exc:
        why = f"the root Application {ROOT_APPLICATION!r}: {exc} (layer 3 applies it)"
        raise broken(PHASE, NAME, why) from None

    def probe() -> waits.Check:
        state = app_of_apps(argocd, with_reasons)
        return waits.Check(state.outcome, state.detail(), state)

    try:
        waited = waits.until(probe, timeout=target.timeouts.rollout, interval=3, what="the app-of-apps")
    except (waits.WaitFailed, waits.WaitTimeout) as exc:
        state = app_of_apps(argocd, with_reasons)
        evidence = {
            f"Application {name}": str(broken_evidence.application(argocd.application, name))
            for name in (*state.failed, *state.waiting)
        }
        raise broken(PHASE, NAME, str(exc), evidence) from None
    state = waited.check.value
    assert isinstance(state, AppOfApps)
    return LayerState(PHASE, NAME, True, state.detail(), {name: "Synced and Healthy" for name in state.ready})
