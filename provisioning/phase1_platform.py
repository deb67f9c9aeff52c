"""Layer 1, platform: GitLab + registry (self-signed CA) + runner, app-repo / gitops-repo.

lab: the smart-HTTPS git server on loopback (platform CA, token auth) hosting app-repo and gitops-repo;
the OCI registry is not in the lab yet, so the registry scenarios skip with that reason.
onprem: the hosts' side first — the ``platform`` role (provisioning/ansible/phase1.yml: GitLab CE with its
registry and a runner under Docker Compose, the platform CA) on the host with the gitlab role, when that
host answers over ssh (a GitLab installed some other way is used as it is); then GitLab's groups,
projects, protected branches, tokens, CI/CD variables and runner through python-gitlab
(provisioning/gitlab_platform.py), and the suite's probe image pushed to the registry when it lists no tag
(provisioning/probe_image.py). The layer is ready when the runner is online.
"""

from __future__ import annotations

from dataclasses import replace

from boutique_suite.clients import hosts
from boutique_suite.context.sites import through_site
from boutique_suite.run.targets import Target
from provisioning import playbooks, probe_image
from provisioning.layer import LayerState, broken

PHASE = 1
NAME = "platform"
NEEDS: tuple[int, ...] = ()


needs, check, ensure = through_site(PHASE)


def check_onprem(target: Target) -> LayerState:
    return _gitlab(target, change=False)


def ensure_onprem(target: Target) -> LayerState:
    platform_hosts = playbooks.hosts_in(target, "platform")
    if platform_hosts and hosts.unreachable(target, only=platform_hosts) is None:
        try:
            playbooks.apply(target, "phase1.yml")
        except playbooks.PlaybookError as exc:
            raise broken(PHASE, NAME, str(exc)) from None
    state = _gitlab(target, change=True)
    try:
        pushed = probe_image.ensure_on_target(target)
    except (AssertionError, OSError) as exc:
        raise broken(PHASE, NAME, f"the suite's probe image could not be pushed: {exc}") from None
    return replace(state, changed=state.changed or pushed is not None)


def _gitlab(target: Target, change: bool) -> LayerState:
    from provisioning import gitlab_platform

    try:
        gl, spec = gitlab_platform.from_target(target)
        report = gitlab_platform.ensure(gl, spec) if change else gitlab_platform.Report()
        online = gitlab_platform.runner_online(gl, spec)
    except gitlab_platform.GitLabUnavailable as exc:
        raise broken(PHASE, NAME, str(exc)) from None
    kept = gitlab_platform.keep_runner_token(report)
    if not online:
        how = f"register it on the runner host with the token in {kept}" if kept else "is it registered?"
        raise broken(PHASE, NAME, f"no online runner tagged {spec.runner_tag} for app-repo: {how}")
    detail = f"GitLab {target.gitlab.url if target.gitlab else ''}: {len(report.changed)} changed"
    return LayerState(PHASE, NAME, True, detail, {"gitlab": gl.url}, changed=bool(report.changed))
