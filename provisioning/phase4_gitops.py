"""Layer 4, GitOps: Kustomize base/overlays, ConfigMap/Secret split, Applications with auto-sync + self-heal.

lab: gitops-repo's AppProject and Application "online-boutique-dev" (repo URL pointed at the lab's git
server) applied to the lab's real Argo CD, which syncs overlays/dev; the layer is ready when the
Application is Synced and Healthy. onprem: through the app-of-apps, not written yet (issue #5).
"""

from __future__ import annotations

from boutique_suite import waits
from boutique_suite.argocd import ArgoCDClient, ArgoCDUnavailable, synced_and_healthy
from boutique_suite.targets import Target
from provisioning.layer import LayerBroken, LayerState, broken, not_provisioned, through_site

PHASE = 4
NAME = "GitOps"
NEEDS = (3,)
ONPREM_NOT_YET = "the app-of-apps bootstrap on real hosts is not written yet (#5)"


needs, check, ensure = through_site(PHASE)


def client(target: Target) -> ArgoCDClient:
    assert target.argocd is not None
    return ArgoCDClient.login(target.argocd.url, target.argocd.username, target.argocd.password())


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
    from boutique_suite import broken_evidence
    from boutique_suite.kube import ClusterUnreachable, connect

    evidence = broken_evidence.application(client.application, target.application)
    try:
        bad = broken_evidence.unhealthy_resources(client.application(target.application))
    except (ArgoCDUnavailable, OSError):
        bad = []
    if bad:  # the cause names what is unhealthy, not only that the Application is
        more = f" and {len(bad) - 3} more" if len(bad) > 3 else ""
        why = f"{why.rstrip('; ')}; " + "; ".join(bad[:3]) + more
    try:
        kube = connect(target.cluster.kubeconfig_path, target.cluster.context, run_id="check")
    except ClusterUnreachable as exc:
        evidence["cluster"] = str(exc)
    else:
        evidence |= broken_evidence.pods_not_ready(kube, target.namespaces.dev)
    return broken(PHASE, NAME, why, evidence)


def check_onprem(target: Target) -> LayerState:
    raise not_provisioned(PHASE, NAME, ONPREM_NOT_YET)


ensure_onprem = check_onprem
