"""Layer 7, advanced.

Terraform, Sealed Secrets, Locust load, HPA.
lab: Sealed Secrets controller as a local process; real HPA controller over KWOK's simulated usage.
"""

from __future__ import annotations

from boutique_suite.targets import Target
from provisioning.layer import LayerState, not_provisioned

PHASE = 7
NAME = "advanced"
NOT_YET = {
    "lab": "Sealed Secrets, Locust and Terraform are not set up in the lab yet (issues #4, #6)",
    "onprem": "Terraform, Sealed Secrets and load tests are not provisioned yet (issue #4)",
}


def needs(target: Target) -> tuple[int, ...]:
    return (4,)


def check(target: Target) -> LayerState:
    raise not_provisioned(PHASE, NAME, NOT_YET[target.kind])


def ensure(target: Target) -> LayerState:
    return check(target)
