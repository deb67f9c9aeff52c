"""Layer 3, gateway + Argo CD.

MetalLB pool, ingress-nginx VIP, Argo CD + Ingress + repository credentials.
lab: real Argo CD and MetalLB's controller as local processes; onprem: Argo CD bootstrapped, rest via GitOps.
"""

from __future__ import annotations

from boutique_suite.targets import Target
from provisioning.layer import LayerState, not_provisioned

PHASE = 3
NAME = "gateway + Argo CD"
NOT_YET = {
    "lab": "real Argo CD and MetalLB's controller are not built into the lab yet (issue #5)",
    "onprem": "the Argo CD bootstrap is not written yet (issue #5)",
}


def needs(target: Target) -> tuple[int, ...]:
    return (1, 2)


def check(target: Target) -> LayerState:
    raise not_provisioned(PHASE, NAME, NOT_YET[target.kind])


def ensure(target: Target) -> LayerState:
    return check(target)
