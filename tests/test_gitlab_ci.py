"""Following app-repo's pipeline on GitLab (boutique_suite/clients/gitlab_ci.py) against a loopback server
that answers as GitLab 18's REST API v4 does for the calls it makes: a project, its pipelines for a commit, a
pipeline's jobs in pages (Link headers), a pipeline, a job's log (text). The answers are written from GitLab's
API reference for the version the on-prem target pins (no GitLab runs here), kept to the fields read."""

from __future__ import annotations

import base64
import os
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import gitlab
import pytest

from boutique_suite.clients import gitlab_ci
from boutique_suite.clients.gitops_repo import RemoteGitopsRepo
from boutique_suite.run import targets, waits
from provisioning import phase5_cicd
from provisioning.layer import LayerBroken
from tests import localhttp

TOKEN = "fake-ci-token"
SHA = "0123abcd" + "e" * 32
BUMP = "f" * 40
PAGE = 2  # jobs per page: every pipeline here spans pages


@dataclass
class FakeGitLab:
    """One project (app-repo, id 1); ``pipelines`` for SHA; each job's statuses, one per listing of the
    pipeline's jobs, the last one kept."""

    pipelines: list[dict] = field(default_factory=list)
    jobs: dict[str, list[str]] = field(default_factory=dict)
    pipeline_status: str = "running"
    ci_yaml: str | None = None  # app-repo's .gitlab-ci.yml on main
    token: str = TOKEN
    listings: int = 0

    def job(self, index: int, name: str) -> dict:
        statuses = self.jobs[name]
        status = statuses[min(self.listings, len(statuses)) - 1]
        return {
            "id": 100 + index,
            "name": name,
            "stage": "bump" if name == "update-gitops" else "build",
            "status": status,
            "duration": 12.5 if status in gitlab_ci.FINISHED else None,
            "web_url": f"https://gitlab.local/boutique/app-repo/-/jobs/{100 + index}",
        }

    def answer(self, method: str, path: str, headers: dict[str, str]) -> tuple:
        if headers.get("PRIVATE-TOKEN") != self.token:
            return 401, {"message": "401 Unauthorized"}
        url = urlsplit(path)
        query = {k: v[0] for k, v in parse_qs(url.query).items()}
        parts = url.path.removeprefix("/api/v4/").split("/")
        if parts == ["user"]:  # python-gitlab's auth(): whose token this is
            return 200, {"id": 2, "username": "boutique-suite"}
        if parts in (["projects", "boutique%2Fapp-repo"], ["projects", "1"]):
            return 200, {"id": 1, "path_with_namespace": "boutique/app-repo"}
        if parts == ["projects", "1", "pipelines"]:
            wanted = (
                [p for p in self.pipelines if p["sha"] == query["sha"]] if "sha" in query else self.pipelines
            )
            return 200, sorted(wanted, key=lambda p: -p["id"])[: int(query.get("per_page", "20"))]
        if parts == ["projects", "1", "repository", "files", ".gitlab-ci.yml"]:
            if self.ci_yaml is None or query.get("ref") != "main":
                return 404, {"message": "404 File Not Found"}
            content = base64.b64encode(self.ci_yaml.encode()).decode()
            return 200, {
                "file_path": ".gitlab-ci.yml",
                "encoding": "base64",
                "content": content,
                "ref": "main",
            }
        if parts[:3] == ["projects", "1", "pipelines"] and len(parts) == 4:
            return 200, {"id": int(parts[3]), "sha": SHA, "status": self.pipeline_status}
        if parts[:3] == ["projects", "1", "pipelines"] and parts[4:] == ["jobs"]:
            self.listings += query.get("page", "1") == "1"
            return self.page([self.job(i, name) for i, name in enumerate(self.jobs)], path, query)
        if parts[:3] == ["projects", "1", "jobs"] and parts[4:] == ["trace"]:
            return 200, f"$ ci/update-gitops.sh\nGITOPS_COMMIT={BUMP}\nJob {parts[3]} finished\n"
        return 404, {"message": f"404 {url.path} not in the fake"}

    @staticmethod
    def page(items: list[dict], path: str, query: dict[str, str]) -> tuple:
        number = int(query.get("page", "1"))
        chunk = items[(number - 1) * PAGE : number * PAGE]
        if number * PAGE >= len(items):
            return 200, chunk
        base = path.split("?")[0]
        rest = "&".join(f"{k}={v}" for k, v in query.items() if k not in ("page", "per_page"))
        link = f'<http://{{host}}{base}?{rest}&page={number + 1}&per_page={PAGE}>; rel="next"'
        return 200, chunk, {"Link": link, "X-Next-Page": str(number + 1)}


Fake = tuple[FakeGitLab, gitlab.Gitlab]


@pytest.fixture
def fake() -> Iterator[Fake]:
    state = FakeGitLab()

    def answer(method: str, path: str, headers: dict[str, str]) -> tuple:
        result = state.answer(method, path, headers)
        if len(result) == 3:
            result[2]["Link"] = result[2]["Link"].replace("{host}", host)
        return result

    with localhttp.serve(answer) as url:
        host = url.removeprefix("http://")
        yield state, gitlab.Gitlab(url, private_token=TOKEN, timeout=5)


def follow(
    gl: gitlab.Gitlab, name: str, runner_online: bool = True, timeout: float = 5
) -> gitlab_ci.GitLabJob:
    project = gl.projects.get("boutique/app-repo")
    return gitlab_ci.follow_job(project, SHA, name, timeout, lambda: runner_online, interval=0.05)


def test_a_job_on_a_later_page_is_followed_to_its_end_with_its_log(fake: Fake) -> None:
    state, gl = fake
    state.pipelines = [{"id": 7, "sha": SHA, "status": "running"}]
    state.jobs = {
        "unit-tests": ["success"],
        "build": ["success"],
        "push": ["success"],
        "update-gitops": ["pending", "running", "success"],
    }
    job = follow(gl, "update-gitops")
    assert (job.job, job.status, job.passed, job.returncode) == ("update-gitops", "success", True, 0)
    assert job.gitops_commit == BUMP
    assert "Job 103 finished" in job.log
    assert state.listings == 3, "it waited while the job was pending and running"


def test_a_failed_job_ends_the_wait_with_its_status_and_log(fake: Fake) -> None:
    state, gl = fake
    state.pipelines = [{"id": 7, "sha": SHA, "status": "failed"}]
    state.jobs = {"build": ["running", "failed"]}
    job = follow(gl, "build")
    assert (job.status, job.passed, job.returncode) == ("failed", False, 1)
    assert job.log


def test_a_pipeline_that_never_starts_times_out_naming_the_commit(fake: Fake) -> None:
    _, gl = fake
    with pytest.raises(waits.WaitTimeout, match=r"GitLab has made no pipeline for 0123abcd yet"):
        follow(gl, "build", timeout=0.3)


def test_a_job_left_pending_with_no_runner_online_fails_at_once(fake: Fake) -> None:
    state, gl = fake
    state.pipelines = [{"id": 7, "sha": SHA, "status": "pending"}]
    state.jobs = {"build": ["pending"]}
    with pytest.raises(waits.WaitFailed, match=r"job build \(100\) pending: no runner of app-repo is online"):
        follow(gl, "build", runner_online=False)


def test_a_pipeline_that_ended_without_the_job_names_the_jobs_it_had(fake: Fake) -> None:
    state, gl = fake
    state.pipelines = [{"id": 7, "sha": SHA, "status": "success"}]
    state.pipeline_status = "success"
    state.jobs = {"unit-tests": ["success"]}
    with pytest.raises(waits.WaitFailed, match=r"has no job 'update-gitops' \(its jobs: \['unit-tests'\]\)"):
        follow(gl, "update-gitops")


def test_a_token_revoked_mid_run_is_one_clear_error(fake: Fake) -> None:
    state, gl = fake
    project = gl.projects.get("boutique/app-repo")
    state.token = "another-token"
    with pytest.raises(gitlab_ci.GitLabRefused, match=r"refused the suite's token \(401\)"):
        gitlab_ci.follow_job(project, SHA, "build", 1, lambda: True, interval=0.05)


# --- layer 5 on-prem -----------------------------------------------------------------------------------

CI_YAML = """
stages: [test, build, push, bump]
.on-default-branch: &on-default-branch
  - if: $CI_COMMIT_BRANCH == $CI_DEFAULT_BRANCH
unit-tests: {stage: test, script: [make test]}
build: {stage: build, rules: *on-default-branch, script: [ci/build.sh]}
push: {stage: push, needs: [build], script: [ci/push.sh]}
update-gitops: {stage: bump, needs: [push], script: [!reference [.bump, script]]}
"""


@pytest.fixture
def onprem(fake: Fake, monkeypatch: pytest.MonkeyPatch) -> tuple[FakeGitLab, targets.Target]:
    state, gl = fake
    base = targets.load("onprem.example")
    assert base.gitlab is not None
    gitlab = base.gitlab.model_copy(update={"url": gl.url, "ca_file": None})
    monkeypatch.setenv(base.gitlab.token_env, TOKEN)
    state.ci_yaml = CI_YAML
    state.jobs = {"build": ["success"], "push": ["success"], "update-gitops": ["failed"]}
    return state, base.model_copy(update={"gitlab": gitlab})


def test_layer_5_on_prem_is_ready_when_app_repos_pipeline_has_the_plans_jobs(onprem) -> None:  # type: ignore[no-untyped-def]
    state, target = onprem
    state.pipelines = [{"id": 6, "sha": "a" * 40, "status": "success", "web_url": "https://gitlab.local/p/6"}]
    layer = phase5_cicd.ensure(target)
    assert layer.ready, layer.detail
    assert layer.detail == "app-repo's pipeline: last pipeline on main: 6 success (aaaaaaaa)"


def test_layer_5_on_prem_names_a_missing_job_and_a_missing_file(onprem) -> None:  # type: ignore[no-untyped-def]
    state, target = onprem
    state.ci_yaml = CI_YAML.replace("push:", "publish:")
    assert phase5_cicd.check(target).detail == "app-repo's .gitlab-ci.yml has no job 'push'"
    state.ci_yaml = None
    with pytest.raises(
        LayerBroken, match=r"layer 5 \(CI/CD\) broken: app-repo has no .gitlab-ci.yml on main"
    ):
        phase5_cicd.ensure(target)


def test_layer_5_on_prem_fails_on_a_failed_last_pipeline_naming_its_failed_jobs(onprem) -> None:  # type: ignore[no-untyped-def]
    state, target = onprem
    state.pipelines = [
        {"id": 6, "sha": "a" * 40, "status": "success", "web_url": "https://gitlab.local/p/6"},
        {"id": 7, "sha": SHA, "status": "failed", "web_url": "https://gitlab.local/p/7"},
    ]
    state.listings = 1
    with pytest.raises(
        LayerBroken, match=r"7 failed \(0123abcd\), failed jobs: update-gitops \(https://gitlab.local/p/7\)"
    ):
        phase5_cicd.ensure(target)


def test_onprem_without_the_gitlab_token_says_which_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    onprem = targets.load("onprem.example")
    assert onprem.gitlab is not None
    monkeypatch.delenv(onprem.gitlab.token_env, raising=False)
    with pytest.raises(LayerBroken, match=rf"layer 5 \(CI/CD\) broken: {onprem.gitlab.token_env} is not set"):
        phase5_cicd.ensure(onprem)


# --- the CI scenarios' interface on GitLab (sites.Pipelines) --------------------------------------------


@pytest.fixture
def app_repo(tmp_path: Path) -> RemoteGitopsRepo:
    """app-repo as a bare repository with one person's commit on main, reached the way GitLab's is (git)."""
    bare, seed = tmp_path / "app-repo.git", tmp_path / "seed"
    env = {**os.environ, "GIT_AUTHOR_NAME": "dev", "GIT_AUTHOR_EMAIL": "dev@example.org"}
    env |= {"GIT_COMMITTER_NAME": "dev", "GIT_COMMITTER_EMAIL": "dev@example.org"}
    for args in (["init", "-q", "--bare", "-b", "main", str(bare)], ["clone", "-q", str(bare), str(seed)]):
        subprocess.run(["git", *args], check=True, env=env, capture_output=True)
    (seed / "src" / "frontend").mkdir(parents=True)
    (seed / "src" / "frontend" / "CHANGELOG.md").write_text("# frontend\n")
    for args in (["add", "-A"], ["commit", "-q", "-m", "frontend"], ["push", "-q", "origin", "HEAD:main"]):
        subprocess.run(["git", *args], cwd=seed, check=True, env=env, capture_output=True)
    return RemoteGitopsRepo(str(bare), dict(os.environ), name="app-repo")


def test_a_commit_to_app_repo_is_followed_through_its_pipeline_and_restored(
    fake: Fake, app_repo: RemoteGitopsRepo, tmp_path: Path
) -> None:
    state, gl = fake
    ci = gitlab_ci.GitLabPipelines(
        gl.projects.get("boutique/app-repo"), "18.6.1", lambda: True, lambda repo: app_repo
    )
    before = app_repo.tree()
    sha = ci.commit_change("app-repo", {"src/frontend/CHANGELOG.md": lambda t: t + "- run 1\n"}, "frontend")
    assert ci.head("app-repo") == sha and app_repo.tree() != before
    state.pipelines = [{"id": 9, "sha": sha, "status": "running"}]  # what GitLab makes on the push
    state.jobs = {"build": ["success"], "push": ["success"], "update-gitops": ["running", "success"]}
    work = ci.checkout("app-repo", sha, tmp_path / "work")
    job = ci.run_job(work, "update-gitops", None, timeout=5)
    assert job.passed and job.gitops_commit == BUMP
    assert ci.runner == "GitLab 18.6.1 pipeline (GitLab Runner)"
    with pytest.raises(AssertionError, match="running update-gitops alone"):
        ci.run_job(work, "update-gitops", {"GITOPS_REPO_URL": "elsewhere"}, timeout=5)
    ci.restore_app_repo("after the scenario")
    assert app_repo.tree() == before
    shown = ci.show_commit("app-repo", sha, "src/frontend/CHANGELOG.md")
    assert shown["files"] == ["src/frontend/CHANGELOG.md"] and "- run 1" in str(shown["content"])
