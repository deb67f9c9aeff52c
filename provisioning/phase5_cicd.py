"""Layer 5, CI/CD: multi-stage builds, commit-SHA tags, `kustomize edit set image` into gitops-repo,
imagePullSecrets.

The pipeline is provisioning/cicd/app-repo/.gitlab-ci.yml (test -> build -> push -> bump), the same file on
every target. lab: app-repo on the lab git server holds provisioning/cicd/app-repo (published idempotently:
the same content makes no commit), and gitlab-ci-local (pinned in package.json) runs its jobs with the shell
executor; the build and push jobs need a container engine and a registry, which the lab lacks, so scenarios
skip them with that reason. onprem: GitLab provisioning with python-gitlab is not written yet (#7, phase 1).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from boutique_suite.targets import Target
from provisioning.layer import LayerState, LayerUnavailable, not_provisioned

if TYPE_CHECKING:
    from provisioning.lab.gitserver import GitServer

PHASE = 5
NAME = "CI/CD"
ONPREM_NOT_YET = (
    "following GitLab pipelines through its API is not written yet (issue #7); phase 1 provisions their "
    "projects, tokens, variables and runner"
)


def needs(target: Target) -> tuple[int, ...]:
    return (1, 4)


def check(target: Target) -> LayerState:
    if not target.is_lab:
        raise not_provisioned(PHASE, NAME, ONPREM_NOT_YET)
    from provisioning.lab import gitserver, pipeline

    missing = pipeline.missing_tools()
    git = gitserver.running()
    if missing or git is None:
        why = "; ".join(missing) if missing else "the lab git server is not running"
        return LayerState(PHASE, NAME, False, why)
    try:
        head = gitserver.head(git, "app-repo")
    except gitserver.GitServerError as exc:
        return LayerState(PHASE, NAME, False, f"app-repo: {exc}")
    return LayerState(PHASE, NAME, True, f"app-repo at {head[:8]}", {"app-repo": head})


def ensure(target: Target) -> LayerState:
    if not target.is_lab:
        return check(target)
    from provisioning.lab import gitserver, pipeline

    try:
        version = pipeline.ensure_tools()
    except pipeline.PipelineUnavailable as exc:
        raise not_provisioned(PHASE, NAME, str(exc)) from None
    git = gitserver.running()
    if git is None:
        raise LayerUnavailable("layer 5 (CI/CD): the lab git server is not running")
    try:
        before = _head_or_none(git)
        head = pipeline.publish_app_repo(git)
    except gitserver.GitServerError as exc:
        raise LayerUnavailable(f"layer 5 (CI/CD): cannot publish app-repo: {exc}") from None
    detail = f"app-repo at {head[:8]} on {git.url}; gitlab-ci-local {version} runs its jobs"
    components = {"app-repo": head, "gitlab-ci-local": version}
    return LayerState(PHASE, NAME, True, detail, components, changed=before != head)


def _head_or_none(git: GitServer) -> str | None:
    from provisioning.lab import gitserver

    try:
        return gitserver.head(git, "app-repo")
    except gitserver.GitServerError:
        return None
