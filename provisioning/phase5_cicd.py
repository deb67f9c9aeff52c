"""Layer 5, CI/CD: multi-stage builds, commit-SHA tags, `kustomize edit set image` into gitops-repo,
imagePullSecrets.

The pipeline is provisioning/cicd/app-repo/.gitlab-ci.yml (test -> build -> push -> bump), the same file on
every target. lab: app-repo on the lab git server holds provisioning/cicd/app-repo (published idempotently:
the same content makes no commit), and gitlab-ci-local (pinned in package.json) runs its jobs with the shell
executor; the build and push jobs need a container engine and a registry, which the lab lacks, so scenarios
skip them with that reason. onprem: GitLab provisioning with python-gitlab is not written yet (#7, phase 1).
"""

from __future__ import annotations

from boutique_suite.sites import through_site
from boutique_suite.targets import Target
from provisioning.layer import LayerState, not_provisioned

PHASE = 5
NAME = "CI/CD"
NEEDS = (1, 4)
ONPREM_NOT_YET = (
    "following GitLab pipelines through its API is not written yet (issue #7); phase 1 provisions their "
    "projects, tokens, variables and runner"
)


needs, check, ensure = through_site(PHASE)


def check_onprem(target: Target) -> LayerState:
    raise not_provisioned(PHASE, NAME, ONPREM_NOT_YET)


ensure_onprem = check_onprem
