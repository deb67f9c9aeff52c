"""Layer 5, CI/CD: multi-stage builds, commit-SHA tags, `kustomize edit set image` into gitops-repo,
imagePullSecrets.

The pipeline is provisioning/cicd/app-repo/.gitlab-ci.yml (test -> build -> push -> bump), the same file on
every target. lab: app-repo on the lab git server holds provisioning/cicd/app-repo (published idempotently:
the same content makes no commit), and gitlab-ci-local (pinned in package.json) runs its jobs with the shell
executor; the build and push jobs need a container engine and a registry, which the lab lacks, so scenarios
skip them with that reason. onprem: phase 1 provisions GitLab's projects, tokens, variables and runner; this
layer reads app-repo's pipeline through GitLab's API (boutique_suite/clients/gitlab_ci.py). It is ready when
app-repo's .gitlab-ci.yml on main has the plan's jobs (build, push, update-gitops) and its last pipeline
there did not fail; a failed one is named with its failed jobs. Nothing is changed: app-repo is the team's.
"""

from __future__ import annotations

from boutique_suite.context.sites import through_site
from boutique_suite.run.targets import Target
from provisioning.layer import LayerState, broken, not_provisioned

PHASE = 5
NAME = "CI/CD"
NEEDS = (1, 4)


needs, check, ensure = through_site(PHASE)


def check_onprem(target: Target) -> LayerState:
    import gitlab

    from boutique_suite.clients import gitlab_ci
    from provisioning import gitlab_platform

    if target.gitlab is None:
        raise not_provisioned(PHASE, NAME, f"{target.source} has no gitlab section")
    try:
        gl, spec = gitlab_platform.from_target(target)
        project = gl.projects.get(f"{spec.group}/{spec.app_repo}")
        problems, detail = gitlab_ci.pipeline_problems(project, spec.branch)
    except (gitlab_platform.GitLabUnavailable, gitlab_ci.GitLabRefused) as exc:
        raise broken(PHASE, NAME, str(exc)) from None
    except gitlab.GitlabError as exc:
        raise broken(PHASE, NAME, f"GitLab answered {exc.response_code}: {exc.error_message}") from None
    return LayerState(PHASE, NAME, not problems, "; ".join(problems) or f"app-repo's pipeline: {detail}")


def ensure_onprem(target: Target) -> LayerState:
    state = check_onprem(target)
    if not state.ready:
        raise broken(PHASE, NAME, state.detail)
    return state
