"""Layer 1, platform: GitLab + registry (self-signed CA) + runner, app-repo / gitops-repo.

lab: the smart-HTTPS git server on loopback (platform CA, token auth) hosting app-repo and gitops-repo;
the OCI registry is not in the lab yet, so the registry scenarios skip with that reason.
onprem: GitLab provisioning with python-gitlab is not written yet (issue #7).
"""

from __future__ import annotations

from boutique_suite.targets import Target
from provisioning.layer import LayerState, LayerUnavailable, not_provisioned

PHASE = 1
NAME = "platform"


def needs(target: Target) -> tuple[int, ...]:
    return ()


def check(target: Target) -> LayerState:
    if not target.is_lab:
        raise not_provisioned(PHASE, NAME, "GitLab provisioning (python-gitlab) is not written yet (#7)")
    from provisioning.lab import gitserver

    current = gitserver.running()
    ready = current is not None
    detail = f"git server {current.url}" if current else "git server not running"
    return LayerState(PHASE, NAME, ready, detail, {"git": current.url} if current else {})


def ensure(target: Target) -> LayerState:
    if not target.is_lab:
        return check(target)
    from provisioning.lab import argocd, boutique, gitserver

    try:
        git = gitserver.ensure(port=argocd.PORTS["git"])
        for repo in gitserver.REPOS:
            gitserver.create_repo(git, repo)
        head = boutique.publish_gitops_content(git)
    except gitserver.GitServerError as exc:
        raise LayerUnavailable(f"layer 1 (platform) could not start the lab git server: {exc}") from None
    detail = f"git server {git.url} with {', '.join(gitserver.REPOS)}; gitops-repo at {head[:8]}"
    return LayerState(PHASE, NAME, True, detail, {"git": git.url, "gitops-repo": head})
