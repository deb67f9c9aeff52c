"""Layer 1, platform.

GitLab + registry (self-signed CA) + runner, app-repo / gitops-repo.
lab: smart-HTTP git server and an OCI registry with its own CA on loopback; onprem: python-gitlab.
"""

from __future__ import annotations

from boutique_suite.targets import Target
from provisioning.layer import LayerState, not_provisioned

PHASE = 1
NAME = "platform"
NOT_YET = {
    "lab": "the lab's smart-HTTP git server and OCI registry are not built yet (issues #5 and #7)",
    "onprem": "GitLab provisioning with python-gitlab is not written yet (issue #7)",
}


def needs(target: Target) -> tuple[int, ...]:
    return ()


def check(target: Target) -> LayerState:
    raise not_provisioned(PHASE, NAME, NOT_YET[target.kind])


def ensure(target: Target) -> LayerState:
    return check(target)
