"""Layer 3, gateway + Argo CD: MetalLB pool, ingress-nginx VIP, Argo CD + Ingress + repository credentials.

lab: real Argo CD (server, repo-server, application controller) and redis as local processes against the
lab apiserver, gitops-repo credentials over HTTPS with the platform CA, Argo CD's Service and Ingress as
objects in the lab. MetalLB's controller and ingress-nginx are not in the lab yet: their scenarios skip.
onprem: the Argo CD bootstrap is not written yet (issue #5).
"""

from __future__ import annotations

from boutique_suite.targets import Target
from provisioning.layer import LayerState, LayerUnavailable, not_provisioned

PHASE = 3
NAME = "gateway + Argo CD"


def needs(target: Target) -> tuple[int, ...]:
    return (1, 2)


def check(target: Target) -> LayerState:
    if not target.is_lab:
        raise not_provisioned(PHASE, NAME, "the Argo CD bootstrap on real hosts is not written yet (#5)")
    from provisioning.lab import argocd

    procs = argocd.status()
    down = [name for name, proc in procs.items() if not proc.alive]
    detail = f"not running: {', '.join(down)}" if down else "Argo CD and redis running"
    return LayerState(PHASE, NAME, not down, detail, {n: str(p.pid) for n, p in procs.items()})


def ensure(target: Target) -> LayerState:
    if not target.is_lab:
        return check(target)
    from provisioning.lab import argocd, kubectl

    try:
        lab = argocd.ensure()
        argocd.expose()
    except (argocd.ArgoCDError, kubectl.KubectlError) as exc:
        raise LayerUnavailable(f"layer 3 (gateway + Argo CD) could not start Argo CD: {exc}") from None
    state = check(target)
    return LayerState(PHASE, NAME, state.ready, f"{state.detail} at {lab.url}", state.components)
