"""Layer 4, GitOps: Kustomize base/overlays, ConfigMap/Secret split, Applications with auto-sync + self-heal.

lab: gitops-repo's AppProject and Application "online-boutique-dev" (repo URL pointed at the lab's git
server) applied to the lab's real Argo CD, which syncs overlays/dev; the layer is ready when the
Application is Synced and Healthy. onprem: through the app-of-apps, not written yet (issue #5).
"""

from __future__ import annotations

from boutique_suite import waits
from boutique_suite.argocd import ArgoCDClient, ArgoCDUnavailable, synced_and_healthy
from boutique_suite.targets import Target
from provisioning.layer import LayerState, LayerUnavailable, not_provisioned

PHASE = 4
NAME = "GitOps"
APPLICATION = "online-boutique-dev"


def needs(target: Target) -> tuple[int, ...]:
    return (3,)


def _client(target: Target) -> ArgoCDClient:
    assert target.argocd is not None
    return ArgoCDClient.login(target.argocd.url, target.argocd.username, target.argocd.password())


def check(target: Target) -> LayerState:
    if not target.is_lab:
        raise not_provisioned(PHASE, NAME, "the app-of-apps bootstrap on real hosts is not written yet (#5)")
    try:
        check = synced_and_healthy(_client(target), APPLICATION)()
    except (ArgoCDUnavailable, OSError) as exc:
        return LayerState(PHASE, NAME, False, str(exc))
    except Exception as exc:  # the Application does not exist yet
        return LayerState(PHASE, NAME, False, f"{APPLICATION}: {exc}")
    return LayerState(PHASE, NAME, check.outcome is waits.Outcome.SUCCEEDED, check.detail)


def ensure(target: Target) -> LayerState:
    if not target.is_lab:
        return check(target)
    from provisioning.lab import boutique, gitserver

    git = gitserver.running()
    if git is None:
        raise LayerUnavailable("layer 4 (GitOps): the lab git server is not running")
    boutique.reseal_registry_credentials()
    head = boutique.publish_gitops_content(git)
    boutique.apply_applications(git)
    client = _client(target)
    client.refresh(APPLICATION)
    healthy = synced_and_healthy(client, APPLICATION, revision=head)

    def probe() -> waits.Check:
        for namespace in boutique.APPLICATIONS.values():
            boutique.publish_ingress_status(namespace) if _namespace_exists(namespace) else None
        return healthy()

    try:
        waited = waits.until(
            probe,
            timeout=target.timeouts.rollout,
            interval=2,
            what=f"Application {APPLICATION} Synced and Healthy",
        )
    except AssertionError as exc:
        raise LayerUnavailable(f"layer 4 (GitOps) not ready: {exc}") from None
    return LayerState(PHASE, NAME, True, waited.check.detail, {APPLICATION: "Synced/Healthy"})


def _namespace_exists(name: str) -> bool:
    from provisioning.lab import kubectl

    return bool(kubectl.run("get", "namespace", name, "--ignore-not-found", "-o", "name").strip())
