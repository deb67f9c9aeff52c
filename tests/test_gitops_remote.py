"""gitops-repo on GitLab (on-prem) as the suite changes it: clone, edit, commit with the suite's trailer,
push; restore goes back to the newest commit that is not the suite's. Run against a real bare repository
with real git (file:// stands in for GitLab's HTTPS: the same git commands, no server)."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest
import yaml

from boutique_suite.clients import gitops_repo
from boutique_suite.context import sites
from boutique_suite.run import targets

EXAMPLE = Path(__file__).resolve().parent.parent / "targets" / "onprem.example.yaml"
PERSON = ["-c", "user.name=platform engineer", "-c", "user.email=pe@example.com"]


def git(*args: str, cwd: Path | None = None) -> str:
    return subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True, text=True).stdout.strip()


@pytest.fixture
def remote(tmp_path: Path) -> gitops_repo.RemoteGitopsRepo:
    bare = tmp_path / "gitops-repo.git"
    git("init", "-q", "--bare", "--initial-branch=main", str(bare))
    work = tmp_path / "seed"
    git("clone", "-q", str(bare), str(work))
    (work / "overlays").mkdir()
    (work / "overlays" / "kustomization.yaml").write_text("images:\n- name: frontend\n  newTag: v1\n")
    git("add", "-A", cwd=work)
    git(*PERSON, "commit", "-q", "-m", "a person's commit", cwd=work)
    git("push", "-q", "origin", "HEAD:main", cwd=work)
    return gitops_repo.RemoteGitopsRepo(f"file://{bare}", {**os.environ, "GIT_TERMINAL_PROMPT": "0"})


def person_commits(repo: gitops_repo.RemoteGitopsRepo, tmp_path: Path, name: str, text: str) -> None:
    work = tmp_path / f"person-{name}"
    git("clone", "-q", repo.url, str(work))
    (work / name).write_text(text)
    git("add", "-A", cwd=work)
    git(*PERSON, "commit", "-q", "-m", "another person's commit", cwd=work)
    git("push", "-q", "origin", "HEAD:main", cwd=work)


def test_a_commit_edits_pushes_and_carries_the_trailer(
    remote: gitops_repo.RemoteGitopsRepo, tmp_path: Path
) -> None:
    before = remote.tree()
    sha = remote.commit(
        {"overlays/kustomization.yaml": gitops_repo.set_image_tag("frontend", "abc123")}, "bump"
    )
    assert remote.head() == sha and remote.tree() != before
    message = git("--git-dir", remote.url.removeprefix("file://"), "log", "-1", "--format=%B", sha)
    assert gitops_repo.SUITE_TRAILER in message
    shown = git("--git-dir", remote.url.removeprefix("file://"), "show", f"{sha}:overlays/kustomization.yaml")
    assert yaml.safe_load(shown)["images"][0]["newTag"] == "abc123"


def test_an_edit_that_changes_nothing_makes_no_commit(remote: gitops_repo.RemoteGitopsRepo) -> None:
    head = remote.head()
    assert remote.commit({"overlays/kustomization.yaml": lambda text: text}, "no-op") == head
    assert remote.head() == head


def test_restore_undoes_every_suite_commit_and_a_second_restore_changes_nothing(
    remote: gitops_repo.RemoteGitopsRepo,
) -> None:
    original = remote.tree()
    remote.commit({"overlays/kustomization.yaml": gitops_repo.set_image_tag("frontend", "bad")}, "drift 1")
    remote.commit({"overlays/extra.yaml": lambda _: "kind: ConfigMap\n"}, "drift 2")
    restored = remote.restore()
    assert remote.tree() == original and remote.head() == restored
    assert remote.restore() == restored, "a second restore made a commit"


def test_restore_keeps_a_persons_commit_made_on_top(
    remote: gitops_repo.RemoteGitopsRepo, tmp_path: Path
) -> None:
    remote.commit({"overlays/kustomization.yaml": gitops_repo.set_image_tag("frontend", "bad")}, "drift")
    person_commits(remote, tmp_path, "NOTES.md", "on top\n")
    kept = remote.tree()
    remote.restore()
    assert remote.tree() == kept


def test_onprem_without_the_token_says_which_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("GITLAB_TOKEN", raising=False)
    with pytest.raises(gitops_repo.RepoUnavailable, match="GITLAB_TOKEN is not set"):
        sites.gitops_repo(targets.load(str(EXAMPLE)))


def test_onprem_with_the_token_clones_from_gitlab_over_https(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GITLAB_TOKEN", "glpat-test")
    repo = sites.gitops_repo(targets.load(str(EXAMPLE)))
    assert isinstance(repo, gitops_repo.RemoteGitopsRepo)
    assert repo.url == "https://gitlab.local/boutique/gitops-repo.git"
    assert "glpat-test" not in repo.url and "glpat-test" not in repr(repo.url)
