"""Layer 4, GitOps.

Kustomize base/overlays, ConfigMap/Secret split, Applications with auto-sync + self-heal.
"""

from __future__ import annotations

from boutique_suite.targets import Target
from provisioning.layer import LayerState, not_provisioned

PHASE = 4
NAME = "GitOps"
NOT_YET = {
    "lab": "the gitops-repo content and its Applications are not written yet (issues #4 and #5)",
    "onprem": "the gitops-repo content and its Applications are not written yet (issues #4 and #5)",
}


def needs(target: Target) -> tuple[int, ...]:
    return (3,)


def check(target: Target) -> LayerState:
    raise not_provisioned(PHASE, NAME, NOT_YET[target.kind])


def ensure(target: Target) -> LayerState:
    return check(target)
