"""GitLab's side of layer 1 on real hosts (python-gitlab), idempotent: a second run changes nothing.

- the group ``boutique`` with the projects ``app-repo`` and ``gitops-repo``;
- ``main`` protected in both (push and merge: maintainers; no force push);
- a deploy token of app-repo for the registry (``read_registry``, ``write_registry``), stored in app-repo as
  the masked, protected CI/CD variables ``REGISTRY_USER`` / ``REGISTRY_PASSWORD``;
- a project access token of gitops-repo for the bump job (``write_repository``, maintainer, rotated 30 days
  before it expires), stored in app-repo as the masked, protected variable ``GITOPS_TOKEN``;
- the platform CA as the group's "File" variable ``PLATFORM_CA`` (jobs trust gitlab.local and registry.local
  with it);
- a project runner of app-repo tagged ``boutique``: created when missing, its authentication token returned
  once for the host's ``gitlab-runner register`` (Ansible); ``runner_online`` tells whether it is online.
  The same runner is enabled for gitops-repo, whose nightly job it runs;
- the nightly pipeline schedule of gitops-repo (``SCHEDULE=nightly``, the target's name in ``TARGET``): the
  ``nightly`` job of gitops-repo's .gitlab-ci.yml runs ``./run nightly`` with it.

Phase 3 adds gitops-repo's push webhook to Argo CD (``ensure_push_webhook``): Argo CD hears of a commit when
it is pushed, not at its next poll (3 minutes by default).

Token values are never logged, printed or kept in a repr: a token GitLab shows once goes straight into the
CI/CD variable that needs it. A token whose variable is missing cannot be recovered, so it is rotated.
"""

from __future__ import annotations

import datetime
import logging
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import gitlab
from gitlab.v4.objects import Group, Project

from boutique_suite.run.targets import Target

log = logging.getLogger(__name__)

MAINTAINER = 40
ROTATE_BEFORE = datetime.timedelta(days=30)
TOKEN_LIFETIME = datetime.timedelta(days=364)  # GitLab caps access tokens at 365 days


class GitLabUnavailable(Exception):
    """GitLab cannot be reached or refuses the suite's token; the message says which."""


@dataclass(frozen=True)
class Spec:
    group: str = "boutique"
    app_repo: str = "app-repo"
    gitops_repo: str = "gitops-repo"
    branch: str = "main"
    runner_tag: str = "boutique"
    deploy_token: str = "registry-ci"
    bump_token: str = "update-gitops"
    platform_ca_pem: str | None = None
    nightly_cron: str = "0 2 * * *"
    nightly_timezone: str = "UTC"
    nightly_target: str = "onprem"

    @property
    def nightly_variables(self) -> dict[str, str]:
        return {"SCHEDULE": "nightly", "TARGET": self.nightly_target}


@dataclass
class Report:
    """What ensure found and what it changed. ``runner_token`` is set only when a runner was created."""

    changed: list[str] = field(default_factory=list)
    present: list[str] = field(default_factory=list)
    runner_token: str | None = field(default=None, repr=False)

    def note(self, changed: bool, what: str) -> None:
        (self.changed if changed else self.present).append(what)
        log.info("%s: %s", "changed" if changed else "present", what)


def connect(url: str, token: str, ca_file: str | None = None) -> gitlab.Gitlab:
    gl = gitlab.Gitlab(
        url, private_token=token, ssl_verify=ca_file or True, timeout=15, retry_transient_errors=False
    )
    try:
        gl.auth()
    except gitlab.GitlabAuthenticationError:
        raise GitLabUnavailable(
            f"GitLab at {url} refused the token (401): check the token's scope (api)"
        ) from None
    except (gitlab.GitlabError, OSError) as exc:
        raise GitLabUnavailable(f"cannot reach GitLab at {url}: {_short(exc)}") from None
    return gl


RUNNER_TOKEN_FILE = Path.home() / ".config" / "boutique-suite" / "gitlab-runner-token"


def from_target(target: Target) -> tuple[gitlab.Gitlab, Spec]:
    """A logged-in client and the spec for an on-prem target: token from the variable the target names, the
    platform CA from its ca_file (also stored as the PLATFORM_CA variable for the jobs)."""
    assert target.gitlab is not None, f"target {target.name} has no gitlab section"
    token = os.environ.get(target.gitlab.token_env, "")
    if not token:
        raise GitLabUnavailable(f"{target.gitlab.token_env} is not set (a GitLab token with the api scope)")
    ca_file = target.gitlab.ca_file
    ca_pem = None
    if ca_file:
        try:
            ca_pem = Path(ca_file).read_text()
        except OSError as exc:
            raise GitLabUnavailable(f"gitlab.ca_file {ca_file}: {exc.strerror}") from None
    return connect(target.gitlab.url, token, ca_file), Spec(
        platform_ca_pem=ca_pem, nightly_target=target.name
    )


def keep_runner_token(report: Report, path: Path | None = None) -> Path | None:
    """A runner token GitLab just showed, kept for the host's `gitlab-runner register` in a 0600 file."""
    if not report.runner_token:
        return None
    path = path or RUNNER_TOKEN_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(report.runner_token + "\n")
    return path


def ensure(gl: gitlab.Gitlab, spec: Spec | None = None) -> Report:
    spec = spec or Spec()
    report = Report()
    try:
        group = _group(gl, spec.group, report)
        app = _project(gl, group, spec.app_repo, report)
        gitops = _project(gl, group, spec.gitops_repo, report)
        for project in (app, gitops):
            _protected_branch(project, spec.branch, report)
        _deploy_token(app, spec.deploy_token, report)
        _bump_token(gitops, app, spec.bump_token, report)
        if spec.platform_ca_pem:
            _variable(group, "PLATFORM_CA", spec.platform_ca_pem, report, masked=False, file=True)
        _runner(gl, app, spec.runner_tag, report)
        _runner_enabled(app, gitops, spec.runner_tag, report)
        _nightly_schedule(gitops, spec, report)
    except gitlab.GitlabError as exc:
        raise GitLabUnavailable(f"GitLab refused a change: {_short(exc)}") from None
    return report


def ensure_push_webhook(
    gl: gitlab.Gitlab, url: str, token: str, new_token: bool, spec: Spec | None = None
) -> Report:
    """gitops-repo's project hook for push events on its branch to ``url`` (Argo CD's /api/webhook), sending
    ``token`` as X-Gitlab-Token (Argo CD's webhook.gitlab.secret). GitLab never shows a hook's token, so
    an existing hook gets the token again only when ``new_token`` says Argo CD's secret was just made."""
    spec = spec or Spec()
    report = Report()
    wanted = {"push_events": True, "push_events_branch_filter": spec.branch, "enable_ssl_verification": True}
    try:
        gitops = gl.projects.get(f"{spec.group}/{spec.gitops_repo}")
        hook = next((h for h in gitops.hooks.list(get_all=True) if h.url == url), None)
        what = f"push webhook of {spec.gitops_repo} to {url}"
        if hook is None:
            gitops.hooks.create({"url": url, "token": token, **wanted})
            report.note(True, what)
        elif new_token or any(hook.attributes.get(k) != v for k, v in wanted.items()):
            for key, value in {**wanted, "token": token}.items():
                setattr(hook, key, value)
            hook.save()
            report.note(True, what)
        else:
            report.note(False, what)
    except gitlab.GitlabError as exc:
        raise GitLabUnavailable(f"GitLab refused gitops-repo's webhook: {_short(exc)}") from None
    return report


def runner_online(gl: gitlab.Gitlab, spec: Spec | None = None) -> bool:
    spec = spec or Spec()
    app = gl.projects.get(f"{spec.group}/{spec.app_repo}")
    runners = app.runners.list(tag_list=spec.runner_tag, get_all=True)
    return any(r.attributes.get("status") == "online" and not r.attributes.get("paused") for r in runners)


# --- one ensure per object ------------------------------------------------------------------------------


def _group(gl: gitlab.Gitlab, path: str, report: Report) -> Group:
    try:
        group = gl.groups.get(path)
        report.note(False, f"group {path}")
    except gitlab.GitlabGetError as exc:
        if exc.response_code != 404:
            raise
        group = gl.groups.create({"name": path, "path": path, "visibility": "private"})
        report.note(True, f"group {path}")
    return group


def _project(gl: gitlab.Gitlab, group: Group, name: str, report: Report) -> Project:
    path = f"{group.full_path}/{name}"
    try:
        project = gl.projects.get(path)
        report.note(False, f"project {path}")
    except gitlab.GitlabGetError as exc:
        if exc.response_code != 404:
            raise
        project = gl.projects.create(
            {
                "name": name,
                "path": name,
                "namespace_id": group.id,
                "visibility": "private",
                "initialize_with_readme": True,
            }
        )
        report.note(True, f"project {path}")
    return project


def _protected_branch(project: Project, branch: str, report: Report) -> None:
    what = f"{project.path_with_namespace}: {branch} protected"
    try:
        protected = project.protectedbranches.get(branch)
    except gitlab.GitlabGetError as exc:
        if exc.response_code != 404:
            raise
    else:
        push = [a.get("access_level") for a in protected.attributes.get("push_access_levels", [])]
        if push == [MAINTAINER] and not protected.attributes.get("allow_force_push"):
            report.note(False, what)
            return
        protected.delete()
    project.protectedbranches.create(
        {
            "name": branch,
            "push_access_level": MAINTAINER,
            "merge_access_level": MAINTAINER,
            "allow_force_push": False,
        }
    )
    report.note(True, what)


def _deploy_token(app: Project, name: str, report: Report) -> None:
    what = f"{app.path_with_namespace}: deploy token {name} in REGISTRY_USER / REGISTRY_PASSWORD"
    tokens = [
        t for t in app.deploytokens.list(get_all=True) if t.name == name and not t.attributes.get("revoked")
    ]
    if tokens and _has_variable(app, "REGISTRY_PASSWORD"):
        report.note(False, what)
        return
    for token in tokens:  # its value was shown once and is lost: rotate
        app.deploytokens.delete(token.id)
    token = app.deploytokens.create({"name": name, "scopes": ["read_registry", "write_registry"]})
    _variable(app, "REGISTRY_USER", token.username, report, masked=False)
    _variable(app, "REGISTRY_PASSWORD", token.token, report)
    report.note(True, what)


def _bump_token(gitops: Project, app: Project, name: str, report: Report) -> None:
    what = f"{gitops.path_with_namespace}: access token {name} in {app.path_with_namespace}'s GITOPS_TOKEN"
    today = datetime.date.today()
    tokens = [
        t
        for t in gitops.access_tokens.list(get_all=True)
        if t.name == name and t.attributes.get("active", True) and not t.attributes.get("revoked")
    ]
    fresh = [t for t in tokens if _expires(t) - today > ROTATE_BEFORE]
    if fresh and _has_variable(app, "GITOPS_TOKEN"):
        report.note(False, what)
        return
    for token in tokens:
        gitops.access_tokens.delete(token.id)
    token = gitops.access_tokens.create(
        {
            "name": name,
            "scopes": ["write_repository"],
            "access_level": MAINTAINER,
            "expires_at": (today + TOKEN_LIFETIME).isoformat(),
        }
    )
    _variable(app, "GITOPS_TOKEN", token.token, report)
    report.note(True, what)


def _expires(token: Any) -> datetime.date:
    value = token.attributes.get("expires_at")
    return datetime.date.fromisoformat(value[:10]) if value else datetime.date.max


def _has_variable(owner: Project | Group, key: str) -> bool:
    try:
        owner.variables.get(key)
    except gitlab.GitlabGetError as exc:
        if exc.response_code != 404:
            raise
        return False
    return True


def _variable(
    owner: Project | Group, key: str, value: str, report: Report, *, masked: bool = True, file: bool = False
) -> None:
    """A protected CI/CD variable ``key`` (masked unless told otherwise); a different value updates it."""
    wanted = {"masked": masked, "protected": True, "variable_type": "file" if file else "env_var"}
    where = getattr(owner, "path_with_namespace", None) or owner.full_path
    try:
        current = owner.variables.get(key)
    except gitlab.GitlabGetError as exc:
        if exc.response_code != 404:
            raise
        owner.variables.create({"key": key, "value": value, **wanted})
        report.note(True, f"{where}: variable {key}")
        return
    same = current.attributes.get("value") == value and all(
        current.attributes.get(k) == v for k, v in wanted.items()
    )
    if same:
        report.note(False, f"{where}: variable {key}")
        return
    owner.variables.update(key, {"value": value, **wanted})
    report.note(True, f"{where}: variable {key}")


def _runner(gl: gitlab.Gitlab, app: Project, tag: str, report: Report) -> None:
    what = f"{app.path_with_namespace}: runner tagged {tag}"
    if app.runners.list(tag_list=tag, get_all=True):
        report.note(False, what)
        return
    created = gl.http_post(
        "/user/runners",
        post_data={
            "runner_type": "project_type",
            "project_id": app.id,
            "tag_list": tag,
            "run_untagged": False,
        },
    )
    assert isinstance(created, dict)
    report.runner_token = created["token"]
    report.note(True, f"{what} (register it on the host with the returned token)")


def _runner_enabled(app: Project, other: Project, tag: str, report: Report) -> None:
    """app-repo's runner also takes ``other``'s jobs (GitLab: enable a project runner in another project)."""
    what = f"{other.path_with_namespace}: runner tagged {tag} enabled"
    if other.runners.list(tag_list=tag, get_all=True):
        report.note(False, what)
        return
    for runner in app.runners.list(tag_list=tag, get_all=True):
        other.runners.create({"runner_id": runner.id})
    report.note(True, what)


NIGHTLY = "nightly verification"


def _nightly_schedule(gitops: Project, spec: Spec, report: Report) -> None:
    """The pipeline schedule that runs gitops-repo's ``nightly`` job: cron, ref and variables as the spec
    says; a schedule that differs is edited in place (its id, and so its pipelines' history, stays)."""
    when = f"{spec.nightly_cron} {spec.nightly_timezone}"
    what = (
        f"{gitops.path_with_namespace}: pipeline schedule '{NIGHTLY}' ({when}, target {spec.nightly_target})"
    )
    wanted = {
        "ref": spec.branch,
        "cron": spec.nightly_cron,
        "cron_timezone": spec.nightly_timezone,
        "active": True,
    }
    found = [s for s in gitops.pipelineschedules.list(get_all=True) if s.description == NIGHTLY]
    if not found:
        schedule = gitops.pipelineschedules.create({"description": NIGHTLY, **wanted})
        changed = True
    else:
        schedule = gitops.pipelineschedules.get(found[0].id)  # the list leaves the variables out
        changed = any(schedule.attributes.get(k) != v for k, v in wanted.items())
        if changed:
            gitops.pipelineschedules.update(schedule.id, wanted)
    have = {v["key"]: v.get("value") for v in schedule.attributes.get("variables") or []}
    for key, value in spec.nightly_variables.items():
        if key not in have:
            schedule.variables.create({"key": key, "value": value})
            changed = True
        elif have[key] != value:
            schedule.variables.update(key, {"value": value})
            changed = True
    report.note(changed, what)


def _short(exc: BaseException) -> str:
    return str(exc).splitlines()[0][:300] if str(exc) else type(exc).__name__
