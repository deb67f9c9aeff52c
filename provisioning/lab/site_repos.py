"""The lab site's repositories and CI, as :class:`boutique_suite.context.sites.Site` hands them to the suite:
app-repo's jobs run by gitlab-ci-local (provisioning/lab/services/pipeline.py) and gitops-repo, both on the
lab's git server."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from provisioning.lab.services import boutique, gitrepos, gitserver, pipeline

if TYPE_CHECKING:
    from provisioning.lab.services.gitserver import GitServer
    from provisioning.lab.services.pipeline import JobResult


@dataclass
class LabPipelines:
    """app-repo's jobs run by gitlab-ci-local against the lab git server."""

    git: GitServer
    single_jobs_missing: str | None = None

    @property
    def runner(self) -> str:
        return f"gitlab-ci-local {pipeline.GITLAB_CI_LOCAL_VERSION} (shell executor)"

    def head(self, repo: str) -> str:
        return gitrepos.head(self.git, repo)

    def repo_url(self, repo: str) -> str:
        return self.git.repo_url(repo)

    def commit_change(self, repo: str, edits: dict[str, Callable[[str], str]], message: str) -> str:
        return pipeline.commit_change(self.git, repo, edits, message)

    def restore_app_repo(self, message: str) -> None:
        pipeline.publish_app_repo(self.git, message)

    def checkout(self, repo: str, commit: str, dest: Path) -> Path:
        return pipeline.checkout(self.git, repo, commit, dest)

    def run_job(self, work: Path, job: str, variables: dict[str, str] | None, timeout: float) -> JobResult:
        return pipeline.run_job(self.git, work, job, variables, timeout=timeout)

    def unrunnable(self, jobs: list[str]) -> str | None:
        """Why some of ``jobs`` cannot run here (None when all can)."""
        reasons = pipeline.unrunnable_jobs()
        skipped = [f'"{job}": {reasons[job]}' for job in jobs if job in reasons]
        return "job cannot run on the lab: " + "; ".join(skipped) if skipped else None

    def copy_repo(self, source: str, name: str) -> Callable[[], None]:
        """A new repository ``name`` holding ``source``'s history, pushable; returns its removal."""
        path = self.git.root / f"{name}.git"
        gitserver.run_git(None, "clone", "--quiet", "--bare", str(self.git.root / f"{source}.git"), str(path))
        gitserver.run_git(path, "config", "http.receivepack", "true")
        return lambda: shutil.rmtree(path, ignore_errors=True)

    def commits_between(self, repo: str, base: str, head: str) -> list[str]:
        return pipeline.commits_between(self.git, repo, base, head)

    def show_commit(self, repo: str, commit: str, path: str) -> dict[str, Any]:
        return pipeline.show_commit(self.git, repo, commit, path)


@dataclass
class LabGitopsRepo:
    """The lab's gitops-repo on its git server: the suite publishes its own content there."""

    def _server(self) -> GitServer:
        from boutique_suite.clients.gitops_repo import RepoUnavailable

        server = gitserver.running()
        if server is None:
            raise RepoUnavailable("the lab git server is not running")
        return server

    def head(self) -> str:
        return gitrepos.head(self._server(), "gitops-repo")

    def tree(self) -> str:
        """The tree hash of main: what gitops-repo holds, whatever commits led there."""
        return gitrepos.tree(self._server(), "gitops-repo")

    def commit(self, edits: dict[str, Callable[[str], str]], message: str) -> str:
        """Commit the suite's gitops content with ``edits`` ({path: text -> text}); returns the SHA."""
        return boutique.publish_gitops_content(self._server(), edits=edits, message=message)

    def restore(self) -> str:
        """Back to the suite's gitops content (what the layer published): a new commit if anything differs."""
        return self.commit({}, "restore gitops-repo after a scenario")
