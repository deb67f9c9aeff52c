"""The lab's stand-in for GitLab's runner: gitlab-ci-local runs jobs of app-repo's own .gitlab-ci.yml
(provisioning/cicd/app-repo) with the shell executor, in a checkout of app-repo from the lab's git server.

Jobs run for real with the lab's tools: git, the pinned kustomize, python3. The variables the on-prem
pipeline gets from GitLab (gitops-repo's URL, the CA file, the bump token) come from the lab: the URL and
the CA path on the command line, the token only through the environment (never an argument, a file in the
checkout or a log line). Build and push need a container engine and a registry, which the lab lacks:
``unrunnable_jobs()`` says why, and those jobs are reported as skipped, never as passed.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from boutique_suite.clients.gitops_repo import RemoteGitopsRepo, bump_commit_in
from provisioning.lab import build
from provisioning.lab.services import app_repo, buildkit, catalog, gitrepos, gitserver, registry

ROOT = Path(__file__).resolve().parents[3]
APP_REPO = ROOT / "provisioning" / "cicd" / "app-repo"
GITLAB_CI_LOCAL = ROOT / "node_modules" / ".bin" / "gitlab-ci-local"
GITLAB_CI_LOCAL_VERSION = "4.73.0"  # the exact version in package.json (4.74+ needs Node 22)
BOT_USER = gitserver.USERNAME  # the lab's git server has one user; on GitLab the bump has its own token
JOB_TIMEOUT = 300.0
BUILD_JOBS = ("build", "push")
_ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")


class PipelineUnavailable(Exception):
    """A tool the lab's pipeline needs is missing; the message says how to get it."""


@dataclass(frozen=True)
class JobResult:
    job: str
    returncode: int
    seconds: float
    log: str

    @property
    def passed(self) -> bool:
        return self.returncode == 0

    @property
    def gitops_commit(self) -> str | None:
        return bump_commit_in(self.log)


def kustomize_dir() -> Path:
    return build.bin_dir("kustomize")


def missing_tools() -> list[str]:
    """What the lab's pipeline lacks, each with the way to get it; empty when it can run jobs."""
    missing = []
    if not GITLAB_CI_LOCAL.exists():
        missing.append(f"gitlab-ci-local {GITLAB_CI_LOCAL_VERSION} (npm, package.json): run ./run setup")
    if shutil.which("rsync") is None:
        missing.append("rsync, which gitlab-ci-local copies the checkout with (Debian): run ./run setup")
    if shutil.which("git") is None:
        missing.append("git (Debian)")
    if not (kustomize_dir() / "kustomize").exists():
        missing.append("the lab's kustomize binary: run ./run setup")
    return missing


def gitlab_ci_local_version() -> str:
    proc = subprocess.run([str(GITLAB_CI_LOCAL), "--version"], capture_output=True, text=True, timeout=60)
    return proc.stdout.strip()


def ensure_tools() -> str:
    """The gitlab-ci-local version, after checking every tool is there and the version is the pinned one."""
    missing = missing_tools()
    if missing:
        raise PipelineUnavailable("missing: " + "; ".join(missing))
    version = gitlab_ci_local_version()
    if version != GITLAB_CI_LOCAL_VERSION:
        raise PipelineUnavailable(
            f"gitlab-ci-local is {version or 'unusable'}, the suite pins {GITLAB_CI_LOCAL_VERSION}: "
            "run ./run setup"
        )
    return version


def unrunnable_jobs() -> dict[str, str]:
    """{job: why the lab cannot run it}: build and push need the lab's buildkitd (phase 5 starts it)."""
    if buildkit.running() is not None:
        return {}
    if buildkit.can_run():
        why = "the lab's buildkitd is not running (phase 5's ensure starts it)"
    else:
        why = "the lab's buildkitd cannot run here (its runc worker needs root and runc)"
    return {"build": f"{why}: nothing builds the image", "push": f"{why}: no image was built to push"}


def build_job_settings() -> tuple[dict[str, str], dict[str, str]]:
    """(variables, secret environment) of the build and push jobs in the lab: the lab's buildkitd as
    BUILDKIT_HOST, registry.local reached at its address with the CI credentials (as GitLab's masked
    REGISTRY_USER / REGISTRY_PASSWORD variables)."""
    local = catalog.local()
    user, password = registry.credentials(local.state)
    variables = {"BUILDKIT_HOST": buildkit.address(), "REGISTRY_ADDRESS": f"{local.host}:{local.port}"}
    return variables, {"REGISTRY_USER": user, "REGISTRY_PASSWORD": password}


# --- app-repo ----------------------------------------------------------------------------------------


def publish_app_repo(
    git: gitserver.GitServer, message: str = "app-repo content from provisioning/cicd"
) -> str:
    """app-repo holds provisioning/cicd/app-repo with src/frontend buildable from the stand-in's source
    (``app_repo.content``); the same content makes no commit. Returns the head."""
    return gitrepos.commit_tree(git, "app-repo", app_repo.content(), message)


def commit_change(
    git: gitserver.GitServer, repo: str, edits: dict[str, Callable[[str], str]], message: str
) -> str:
    """Clone ``repo``, apply ``edits`` ({path: text -> text}), commit and push to main; returns the SHA."""
    env = {**gitrepos.client_env(git), **gitrepos.author_env()}
    with tempfile.TemporaryDirectory(prefix="boutique-app-") as tmp:
        work = Path(tmp) / repo
        _git(None, "clone", "--quiet", git.repo_url(repo), str(work), env=env)
        for relative, edit in edits.items():
            path = work / relative
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(edit(path.read_text() if path.exists() else ""))
        _git(work, "add", "--all", env=env)
        _git(work, "-c", "commit.gpgsign=false", "commit", "--quiet", "-m", message, env=env)
        _git(work, "push", "--quiet", "origin", "HEAD:refs/heads/main", env=env)
        return _git(work, "rev-parse", "HEAD", env=env).strip()


def _remote(git: gitserver.GitServer, repo: str) -> RemoteGitopsRepo:
    return RemoteGitopsRepo(git.repo_url(repo), gitrepos.client_env(git), repo)


def checkout(git: gitserver.GitServer, repo: str, sha: str, dest: Path) -> Path:
    """A clone of ``repo`` with main at ``sha`` (so CI_COMMIT_BRANCH is main and CI_COMMIT_SHA is sha)."""
    return _remote(git, repo).checkout(sha, dest)


def show_commit(git: gitserver.GitServer, repo: str, sha: str, path: str) -> dict[str, object]:
    """A commit as the server has it: message, parent, changed files and ``path``'s content there."""
    return _remote(git, repo).show(sha, path)


def commits_between(git: gitserver.GitServer, repo: str, old: str, new: str) -> list[str]:
    return _remote(git, repo).commits_between(old, new)


# --- jobs ----------------------------------------------------------------------------------------------


def run_job(
    git: gitserver.GitServer,
    workdir: Path,
    job: str,
    variables: dict[str, str] | None = None,
    timeout: float = JOB_TIMEOUT,
    extra_env: dict[str, str] | None = None,
) -> JobResult:
    """Run ``job`` of ``workdir``'s .gitlab-ci.yml with gitlab-ci-local's shell executor, as the runner
    would: the lab's gitops-repo URL, CA and bump user as variables, the token in the environment only."""
    values = {
        "GITOPS_REPO_URL": git.repo_url("gitops-repo"),
        "GITOPS_USER": BOT_USER,
        "PLATFORM_CA": str(git.ca_file),
        "CI_PROJECT_URL": git.repo_url("app-repo").removesuffix(".git"),  # not gitlab-ci-local's placeholder
        **(variables or {}),
    }
    env = {**(extra_env or {}), "GITOPS_TOKEN": git.token()}
    if job in BUILD_JOBS:
        build_variables, secrets = build_job_settings()
        values, env = {**build_variables, **values}, {**env, **secrets}
    result = run_pipeline(workdir, [job], values, timeout, env, unset=("CI_PIPELINE_URL",))
    log = result.log
    for secret in (git.token(), env.get("REGISTRY_PASSWORD", "")):
        log = _redact(log, secret)
    return JobResult(job, result.returncode, result.seconds, log)


def run_pipeline(
    workdir: Path,
    jobs: list[str] | None = None,
    variables: dict[str, str] | None = None,
    timeout: float = JOB_TIMEOUT,
    extra_env: dict[str, str] | None = None,
    unset: tuple[str, ...] = (),
) -> JobResult:
    """Run ``jobs`` (default: the whole pipeline, stage by stage) of ``workdir``'s .gitlab-ci.yml with the
    shell executor; the lab's kustomize and the suite's Python tools are on PATH. ``unset``: predefined
    variables the lab has no true value for (there is no pipeline page to link to)."""
    ensure_tools()
    cmd = [str(GITLAB_CI_LOCAL), "--force-shell-executor", "--no-color", *(jobs or [])]
    for key, value in (variables or {}).items():
        cmd += ["--variable", f"{key}={value}"]
    for key in unset:
        cmd += ["--unset-variable", key]
    started = time.monotonic()
    try:
        proc = subprocess.run(
            cmd,
            env=_env({**(variables or {}), **dict.fromkeys(unset, "")}, extra_env),
            capture_output=True,
            text=True,
            timeout=timeout,
            cwd=workdir,
        )
        code, out = proc.returncode, proc.stdout + proc.stderr
    except subprocess.TimeoutExpired as exc:
        code, out = 124, f"{exc.stdout or ''}{exc.stderr or ''}\n(gitlab-ci-local killed after {timeout:g}s)"
    log = _ANSI.sub("", out if isinstance(out, str) else out.decode(errors="replace"))
    return JobResult(" ".join(jobs or ["pipeline"]), code, time.monotonic() - started, log)


def list_jobs(
    workdir: Path, variables: dict[str, str] | None = None, unset: tuple[str, ...] = ()
) -> dict[str, str]:
    """{job: when} as gitlab-ci-local evaluates the rules for ``variables`` ("never": not in the pipeline)."""
    ensure_tools()
    cmd = [str(GITLAB_CI_LOCAL), "--list-json", "--no-color"]
    for key, value in (variables or {}).items():
        cmd += ["--variable", f"{key}={value}"]
    for key in unset:
        cmd += ["--unset-variable", key]
    proc = subprocess.run(
        cmd, env=_env(variables, None), capture_output=True, text=True, timeout=JOB_TIMEOUT, cwd=workdir
    )
    if proc.returncode != 0:
        raise PipelineUnavailable(f"gitlab-ci-local --list-json: {(proc.stderr or proc.stdout)[-400:]}")
    return {job["name"]: job["when"] for job in json.loads(proc.stdout[proc.stdout.index("[") :])}


def validate_needs(workdir: Path, variables: dict[str, str] | None = None) -> tuple[bool, str]:
    """gitlab-ci-local's check that every job that runs for ``variables`` has the jobs it ``needs``."""
    ensure_tools()
    cmd = [str(GITLAB_CI_LOCAL), "--validate-dependency-chain", "--no-color"]
    for key, value in (variables or {}).items():
        cmd += ["--variable", f"{key}={value}"]
    proc = subprocess.run(
        cmd, env=_env(variables, None), capture_output=True, text=True, timeout=JOB_TIMEOUT, cwd=workdir
    )
    return proc.returncode == 0, _ANSI.sub("", proc.stdout + proc.stderr)


def _env(variables: dict[str, str] | None, extra: dict[str, str] | None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("GIT_CONFIG", "GIT_SSL"))}
    tools = [
        str(kustomize_dir()),
        str(Path(sys.executable).parent),
        str(build.bin_dir("buildkit")),
        str(build.bin_dir("crane")),
    ]  # kustomize; yamllint, kubernetes-validate; buildctl; crane
    env["PATH"] = os.pathsep.join([*tools, env.get("PATH", "")])
    env["GCL_IGNORE_PREDEFINED_VARS"] = ",".join(variables or {})  # overriding CI_* on purpose, no warning
    env.update(extra or {})
    return env


def _redact(text: str, secret: str) -> str:
    return text.replace(secret, "[MASKED]") if secret else text


def _git(cwd: Path | None, *args: str, env: dict[str, str] | None = None) -> str:
    return gitserver.run_git(cwd, *args, env=env)
