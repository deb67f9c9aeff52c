"""Layer 3, gateway + Argo CD: MetalLB pool, ingress-nginx VIP, Argo CD + Ingress + repository credentials.

lab: real Argo CD from its pinned install.yaml in the lab cluster, installed by the on-prem code
(argocd_bootstrap.install) with the lab's settings, gitops-repo's credentials over HTTPS with the platform
CA and gitops-repo's Argo CD Ingress (provisioning/lab/services/argocd.py); real MetalLB controller (address
management only, no speaker) with gitops-repo's pool on the lab target's loopback range, and ingress-nginx's
Service (ingress-nginx itself cannot run). When MetalLB's controller cannot start, Argo CD is still
provided: the MetalLB scenarios skip with the reason.
onprem: Argo CD pinned (install.yaml from its Go module), its Ingress, gitops-repo's credentials and the
root Application of the app-of-apps (provisioning/argocd_bootstrap.py); MetalLB, ingress-nginx and the
rest come through the app-of-apps.
"""

from __future__ import annotations

import logging

from boutique_suite.context.sites import through_site
from boutique_suite.run.targets import Target
from provisioning.layer import LayerState, broken

log = logging.getLogger(__name__)

PHASE = 3
NAME = "gateway + Argo CD"


NEEDS = (1, 2)


needs, check, ensure = through_site(PHASE)


def check_onprem(target: Target) -> LayerState:
    from provisioning import argocd_bootstrap
    from provisioning.lab.kubectl import KubectlError

    ns = target.argocd_namespace
    try:
        kubectl = argocd_bootstrap.kubectl_for(target)
        for workload in argocd_bootstrap.workloads(target.argocd is None or target.argocd.dex):
            kubectl.run("rollout", "status", "-n", ns, workload, "--timeout=5s", timeout=30)
    except (argocd_bootstrap.BootstrapError, KubectlError) as exc:
        return LayerState(PHASE, NAME, False, str(exc))
    return LayerState(PHASE, NAME, True, f"Argo CD {argocd_bootstrap.version()} rolled out in {ns}")


def ensure_onprem(target: Target) -> LayerState:
    from provisioning import argocd_bootstrap

    try:
        changed = argocd_bootstrap.ensure(target)
    except argocd_bootstrap.BootstrapError as exc:
        raise broken(PHASE, NAME, f"Argo CD bootstrap: {exc}") from None
    state = check_onprem(target)
    detail = f"{state.detail}; changed: {', '.join(changed) if changed else 'nothing'}"
    return LayerState(PHASE, NAME, state.ready, detail, state.components, changed=bool(changed))
