"""app-repo's pipelines on GitLab, followed through its REST API (python-gitlab): on-prem layer 5.

For a commit on app-repo the suite finds the pipeline GitLab made for it, follows one of its jobs to its end
and reads the job's log, as a person would on the pipeline's page. Each wait has three outcomes: a job that
ends is succeeded (passed or not, its status and log say which); a pipeline that does not exist yet, or a job
still created, pending or running, is pending; a pipeline that ended without the job, or a job left pending
while no runner of app-repo is online, is failed at once with that cause. GitLab refusing the token is one
clear error. The job's log never holds a secret: GitLab masks the protected variables in it.
"""

from __future__ import annotations

import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import gitlab
import yaml
from gitlab.v4.objects import Project, ProjectPipeline

from boutique_suite.clients.gitops_repo import RemoteGitopsRepo, bump_commit_in
from boutique_suite.run import waits
from boutique_suite.run.targets import Target

FINISHED = ("success", "failed", "canceled", "skipped", "manual")


class GitLabRefused(AssertionError):
    """GitLab refused the suite's token while it followed a pipeline."""


@dataclass(frozen=True)
class GitLabJob:
    """One job of a pipeline as it ended (``sites.JobRun``)."""

    job: str
    status: str
    seconds: float
    web_url: str
    log: str = field(repr=False)

    @property
    def returncode(self) -> int:
        return 0 if self.status == "success" else 1

    @property
    def passed(self) -> bool:
        return self.status == "success"

    @property
    def gitops_commit(self) -> str | None:
        return bump_commit_in(self.log)


def _refused(call: Callable[[], object]) -> object:
    try:
        return call()
    except gitlab.GitlabAuthenticationError as exc:
        raise GitLabRefused(
            f"GitLab refused the suite's token ({exc.response_code}): it was revoked or lost the api scope"
        ) from None


def pipeline_of(project: Project, sha: str) -> waits.Probe:
    """The newest pipeline GitLab made for commit ``sha``."""

    def probe() -> waits.Check:
        found = _refused(lambda: project.pipelines.list(sha=sha, get_all=True))
        if not found:
            return waits.pending(f"GitLab has made no pipeline for {sha[:8]} yet")
        newest = max(found, key=lambda p: p.id)  # type: ignore[union-attr]
        return waits.succeeded(f"pipeline {newest.id} ({newest.status})", newest)  # type: ignore[union-attr]

    return probe


def job_of(pipeline: ProjectPipeline, name: str, runner_online: Callable[[], bool]) -> waits.Probe:
    """Job ``name`` of ``pipeline`` once it has ended."""

    def probe() -> waits.Check:
        jobs = _refused(lambda: pipeline.jobs.list(get_all=True, include_retried=False))
        job = next((j for j in jobs if j.name == name), None)  # type: ignore[union-attr]
        if job is None:
            status = _refused(lambda: pipeline.manager.get(pipeline.id).status)
            names = sorted({j.name for j in jobs})  # type: ignore[union-attr]
            detail = f"pipeline {pipeline.id} ({status}) has no job {name!r} (its jobs: {names})"
            return waits.failed(detail) if status in FINISHED else waits.pending(detail)
        detail = f"job {name} ({job.id}) {job.status}"
        if job.status in FINISHED:
            return waits.succeeded(detail, job)
        if job.status == "pending" and not runner_online():
            return waits.failed(f"{detail}: no runner of app-repo is online to pick it up")
        return waits.pending(detail)

    return probe


def follow_job(
    project: Project,
    sha: str,
    name: str,
    timeout: float,
    runner_online: Callable[[], bool],
    interval: float = 3.0,
) -> GitLabJob:
    """Job ``name`` of the pipeline for ``sha``, followed to its end, with its log."""
    started = time.monotonic()
    what = f"app-repo's pipeline for {sha[:8]}"
    found = waits.until(pipeline_of(project, sha), timeout=timeout, interval=interval, what=what).check.value
    left = max(interval, timeout - (time.monotonic() - started))
    job = waits.until(
        job_of(found, name, runner_online), timeout=left, interval=interval, what=f"job {name} of {what}"
    ).check.value
    log = _refused(lambda: project.jobs.get(job.id, lazy=True).trace())
    text = log.decode(errors="replace") if isinstance(log, bytes) else str(log)
    return GitLabJob(name, job.status, float(job.duration or 0.0), job.web_url, text)


# --- layer 5 on-prem: app-repo's pipeline as GitLab has it -----------------------------------------------

PLAN_JOBS = ("build", "push", "update-gitops")  # the plan's pipeline: build, push by SHA, bump gitops-repo


class _CIYaml(yaml.SafeLoader):
    """GitLab's CI YAML: its own tags (``!reference``) read as plain values."""


_CIYaml.add_multi_constructor("!", lambda loader, suffix, node: None)


def pipeline_problems(project: Project, branch: str) -> tuple[list[str], str]:
    """What keeps app-repo's CI from shipping (empty when nothing does), and what its last pipeline did."""
    try:
        text = _refused(lambda: project.files.get(".gitlab-ci.yml", ref=branch).decode())
    except gitlab.GitlabGetError as exc:
        if exc.response_code != 404:
            raise
        return [f"app-repo has no .gitlab-ci.yml on {branch}"], ""
    jobs = yaml.load(text, Loader=_CIYaml) or {}
    problems = [f"app-repo's .gitlab-ci.yml has no job {job!r}" for job in PLAN_JOBS if job not in jobs]
    last = _refused(lambda: project.pipelines.list(ref=branch, order_by="id", sort="desc", per_page=1))
    if not last:
        return problems, f"no pipeline has run on {branch} yet"
    pipeline = last[0]  # type: ignore[index]
    detail = f"last pipeline on {branch}: {pipeline.id} {pipeline.status} ({pipeline.sha[:8]})"
    if pipeline.status == "failed":
        failed = [j.name for j in _refused(lambda: pipeline.jobs.list(get_all=True)) if j.status == "failed"]
        problems.append(f"{detail}, failed jobs: {', '.join(failed) or 'none listed'} ({pipeline.web_url})")
    return problems, detail


# --- the suite's CI on GitLab (sites.Pipelines) ----------------------------------------------------------

SINGLE_JOBS_MISSING = (
    "GitLab runs a job only inside its commit's pipeline, after the jobs it needs: running update-gitops "
    "alone against a scratch copy of gitops-repo is what gitlab-ci-local does on the lab (on GitLab, the "
    "scenario of a commit to app-repo runs it in its pipeline)"
)


@dataclass
class GitLabPipelines:
    """app-repo's CI on GitLab: the suite commits over HTTPS as a person would (``remote`` gives each
    repository), GitLab makes and runs the pipeline, and the suite follows its jobs."""

    project: Project
    version: str
    runner_online: Callable[[], bool]
    remote: Callable[[str], RemoteGitopsRepo]
    single_jobs_missing: str | None = SINGLE_JOBS_MISSING

    @property
    def runner(self) -> str:
        return f"GitLab {self.version} pipeline (GitLab Runner)"

    def head(self, repo: str) -> str:
        return self.remote(repo).head()

    def repo_url(self, repo: str) -> str:
        return self.remote(repo).url

    def commit_change(self, repo: str, edits: dict[str, Callable[[str], str]], message: str) -> str:
        return self.remote(repo).commit(edits, message)

    def restore_app_repo(self, message: str) -> None:
        self.remote("app-repo").restore()  # its commit names the base it restored

    def checkout(self, repo: str, commit: str, dest: Path) -> Path:
        return self.remote(repo).checkout(commit, dest)

    def run_job(self, work: Path, job: str, variables: dict[str, str] | None, timeout: float) -> GitLabJob:
        """Job ``job`` of the pipeline GitLab made for ``work``'s commit, followed to its end."""
        if variables:
            raise AssertionError(self.single_jobs_missing)
        sha = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=work, capture_output=True, text=True, check=True
        ).stdout.strip()
        return follow_job(self.project, sha, job, timeout, self.runner_online)

    def unrunnable(self, jobs: list[str]) -> str | None:
        return None  # GitLab runs every job; a job no runner picks up fails its wait, naming why

    def copy_repo(self, source: str, name: str) -> Callable[[], None]:
        raise AssertionError(self.single_jobs_missing)

    def commits_between(self, repo: str, base: str, head: str) -> list[str]:
        return self.remote(repo).commits_between(base, head)

    def show_commit(self, repo: str, commit: str, path: str) -> dict[str, object]:
        return self.remote(repo).show(commit, path)


def pipelines_for(target: Target, git_remote: Callable[[str], tuple[str, dict[str, str]]]) -> GitLabPipelines:
    """The on-prem target's CI: its GitLab (token from the variable the target names) and app-repo."""
    from provisioning import gitlab_platform

    assert target.gitlab is not None, f"{target.source} has no gitlab section"
    gl, spec = gitlab_platform.from_target(target)
    project = _refused(lambda: gl.projects.get(f"{spec.group}/{spec.app_repo}"))
    return GitLabPipelines(
        project,  # type: ignore[arg-type]
        target.gitlab.version or "(version not pinned)",
        lambda: gitlab_platform.runner_online(gl, spec),
        lambda repo: RemoteGitopsRepo(*git_remote(repo), name=repo),
    )
