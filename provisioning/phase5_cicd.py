"""Layer 5, CI/CD.

Multi-stage builds, commit-SHA tags, kustomize edit set image into gitops-repo, imagePullSecrets.
lab: gitlab-ci-local runs the same .gitlab-ci.yml jobs against the lab git server.
"""

from __future__ import annotations

from boutique_suite.targets import Target
from provisioning.layer import LayerState, not_provisioned

PHASE = 5
NAME = "CI/CD"
NOT_YET = {
    "lab": "gitlab-ci-local and the .gitlab-ci.yml templates are not set up yet (issue #7)",
    "onprem": "GitLab pipelines are not provisioned yet (issue #7)",
}


def needs(target: Target) -> tuple[int, ...]:
    return (1, 4)


def check(target: Target) -> LayerState:
    raise not_provisioned(PHASE, NAME, NOT_YET[target.kind])


def ensure(target: Target) -> LayerState:
    return check(target)
