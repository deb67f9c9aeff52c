"""The two pipelines as gitlab-ci-local reads and runs them (real jobs, shell executor, no server needed):
which jobs run for which push (rules that keep the bump from looping), gitops-repo's check pyramid on a
merge request (and the defect it catches), app-repo's Dockerfile rules (and the defects they catch), and
how changed services are found."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from provisioning import gitops as gitops_content
from provisioning.lab.services import pipeline

pytestmark = pytest.mark.standalone

CICD = pipeline.ROOT / "provisioning" / "cicd"
MR = {"CI_PIPELINE_SOURCE": "merge_request_event"}
BOT = "update-gitops <update-gitops@boutique.local>"


@pytest.fixture(scope="module", autouse=True)
def tools() -> None:
    missing = pipeline.missing_tools()
    if missing:
        pytest.skip("; ".join(missing))


def git(cwd: Path, *args: str) -> str:
    env = {"GIT_AUTHOR_NAME": "dev", "GIT_AUTHOR_EMAIL": "dev@boutique.local", "HOME": str(cwd.parent)}
    env |= {"GIT_COMMITTER_NAME": "dev", "GIT_COMMITTER_EMAIL": "dev@boutique.local", "PATH": "/usr/bin:/bin"}
    return subprocess.run(["git", *args], cwd=cwd, env=env, check=True, capture_output=True, text=True).stdout


def repo_of(source: Path, dest: Path, ignore: tuple[str, ...] = ()) -> Path:
    shutil.copytree(source, dest, ignore=shutil.ignore_patterns(*ignore))
    git(dest, "init", "--quiet", "--initial-branch=main")
    git(dest, "add", "--all")
    git(dest, "commit", "--quiet", "-m", "initial content")
    return dest


@pytest.fixture
def app(tmp_path: Path) -> Path:
    return repo_of(CICD / "app-repo", tmp_path / "app-repo")


@pytest.fixture
def gitops(tmp_path: Path) -> Path:
    work = repo_of(gitops_content.ROOT, tmp_path / "gitops-repo", ("checks", "*.py", "__pycache__"))
    shutil.copy(CICD / "gitops-repo" / ".gitlab-ci.yml", work / ".gitlab-ci.yml")
    git(work, "add", "--all")
    git(work, "commit", "--quiet", "-m", "the pipeline")
    return work


def running(jobs: dict[str, str]) -> list[str]:
    return sorted(name for name, when in jobs.items() if when != "never")


# --- which jobs run ----------------------------------------------------------------------------------


def test_a_push_to_main_runs_test_build_push_and_bump(app: Path) -> None:
    assert running(pipeline.list_jobs(app)) == ["build", "push", "test-dockerfiles", "update-gitops"]


@pytest.mark.parametrize("branch", ["main", "feature-x"])
def test_every_job_that_runs_has_the_jobs_it_needs(app: Path, branch: str) -> None:
    """The bump needs push, push needs build: on every branch the chain is whole (or absent)."""
    ok, output = pipeline.validate_needs(app, {"CI_COMMIT_BRANCH": branch})
    assert ok and "All job dependencies are valid" in output, output


def test_a_merge_request_only_tests(app: Path) -> None:
    jobs = pipeline.list_jobs(app, MR, unset=("CI_COMMIT_BRANCH",))
    assert running(jobs) == ["test-dockerfiles"]


def test_a_feature_branch_neither_builds_nor_bumps(app: Path) -> None:
    assert running(pipeline.list_jobs(app, {"CI_COMMIT_BRANCH": "feature-x"})) == ["test-dockerfiles"]


def test_a_commit_of_the_bump_bot_never_bumps_again(app: Path) -> None:
    jobs = pipeline.list_jobs(app, {"CI_COMMIT_AUTHOR": BOT})
    assert jobs["update-gitops"] == "never"


def test_gitops_repo_runs_its_checks_on_merge_requests_only(gitops: Path) -> None:
    assert running(pipeline.list_jobs(gitops)) == [], "a push to main (a merge, a bump) starts nothing"
    assert running(pipeline.list_jobs(gitops, MR)) == ["kustomize-build", "policy", "schema", "yamllint"]


def test_gitops_repo_runs_only_the_nightly_job_on_its_schedule(gitops: Path) -> None:
    nightly = {"CI_PIPELINE_SOURCE": "schedule", "SCHEDULE": "nightly"}
    assert running(pipeline.list_jobs(gitops, nightly)) == ["nightly"]
    other = {"CI_PIPELINE_SOURCE": "schedule", "SCHEDULE": "weekly"}
    assert running(pipeline.list_jobs(gitops, other)) == [], "another schedule starts nothing here"


# --- gitops-repo's check pyramid ---------------------------------------------------------------------


def test_gitops_checks_pass_on_the_suites_content(gitops: Path) -> None:
    result = pipeline.run_pipeline(gitops, variables=MR)
    assert result.passed, result.log
    for job in ("yamllint", "kustomize-build", "schema", "policy"):
        assert f"PASS  {job}" in result.log
    assert "built overlays/dev" in result.log and "every image is pinned" in result.log


def test_gitops_policy_catches_a_latest_tag(gitops: Path) -> None:
    path = gitops / "overlays/dev/kustomization.yaml"
    path.write_text(path.read_text().replace("newTag: 5f3c2a1b", "newTag: latest", 1))
    git(gitops, "commit", "--quiet", "-am", "latest")
    result = pipeline.run_pipeline(gitops, ["kustomize-build", "policy"], MR)
    assert not result.passed
    assert "registry.local/boutique/adservice:latest" in result.log
    assert "policy: pin every image to a tag or digest, never latest" in result.log


def test_gitops_lint_catches_broken_yaml(gitops: Path) -> None:
    (gitops / "overlays/dev/broken.yaml").write_text("key: [unclosed\n")
    git(gitops, "add", "--all")
    git(gitops, "commit", "--quiet", "-m", "broken")
    result = pipeline.run_pipeline(gitops, ["yamllint"], MR)
    assert not result.passed
    assert "overlays/dev/broken.yaml" in result.log and "syntax error" in result.log


# --- app-repo's Dockerfile rules (the test stage) ----------------------------------------------------


def test_the_test_job_passes_on_app_repo(app: Path) -> None:
    result = pipeline.run_pipeline(app, ["test-dockerfiles"])
    assert result.passed, result.log
    assert "check_dockerfiles: 11 Dockerfiles, 0 problem(s)" in result.log


@pytest.mark.parametrize(
    ("dockerfile", "problem"),
    [
        (
            "FROM golang:1.25.4-bookworm\nRUN go build -o /server .\nUSER 65532\n",
            "[multi-stage] has 1 stage(s): needs a build stage and a separate final stage",
        ),
        (
            "FROM golang:1.25.4 AS build\nFROM golang:1.25.4\nCOPY --from=build /s /s\nUSER 1000\n",
            "[lean final stage] the final stage starts from golang:1.25.4, a compiler/SDK image",
        ),
        (
            "FROM node:22 AS build\nFROM node:22.21.1-bookworm\nCOPY --from=build /a /a\nUSER 1000\n",
            "[lean final stage] the final stage starts from node:22.21.1-bookworm, a compiler/SDK image",
        ),
        (
            "FROM python:3.12 AS build\nRUN pip wheel .\nFROM python:3.12-slim\nCOPY --from=build /w /w\n",
            "[non-root] the final stage sets no USER (it would run as the base image's user, often root)",
        ),
        (
            "FROM python:3.12 AS build\nFROM python:3.12-slim\nCOPY --from=build /w /w\nUSER root\n",
            "[non-root] the final stage runs as root",
        ),
        (
            "FROM golang:latest AS build\nFROM gcr.io/distroless/static\nCOPY --from=build /s /s\nUSER 1\n",
            "[pinned] FROM golang:latest: pin a version tag or digest (never latest)",
        ),
    ],
)
def test_the_dockerfile_rules_catch_each_defect(app: Path, dockerfile: str, problem: str) -> None:
    (app / "src" / "frontend" / "Dockerfile").write_text(dockerfile)
    proc = subprocess.run(
        ["python3", "ci/check_dockerfiles.py", "src"], cwd=app, capture_output=True, text=True, timeout=60
    )
    assert proc.returncode == 1
    assert f"src/frontend/Dockerfile: {problem}" in proc.stdout.splitlines(), proc.stdout
    assert "Traceback" not in proc.stderr


# --- changed services --------------------------------------------------------------------------------


def changed(app: Path, **env: str) -> str:
    proc = subprocess.run(
        ["ci/changed-services.sh"],
        cwd=app,
        capture_output=True,
        text=True,
        timeout=30,
        env={"PATH": "/usr/bin:/bin", **env},
    )
    assert proc.returncode == 0, proc.stderr
    return proc.stdout.strip()


def test_changed_services_are_the_src_directories_the_push_touched(app: Path) -> None:
    assert changed(app) == " ".join(sorted(p.parent.name for p in app.glob("src/*/Dockerfile"))), (
        "first commit"
    )
    base = git(app, "rev-parse", "HEAD").strip()
    for path in ("src/frontend/CHANGELOG.md", "src/cartservice/CHANGELOG.md", "ci/README.md"):
        (app / path).write_text("change\n")
    git(app, "add", "--all")
    git(app, "commit", "--quiet", "-m", "two services and CI")
    assert changed(app) == "cartservice frontend"
    assert changed(app, CI_COMMIT_BEFORE_SHA=base) == "cartservice frontend"
    assert changed(app, CI_COMMIT_BEFORE_SHA="0" * 40) == "cartservice frontend", "new branch: last commit"
    assert changed(app, SERVICES="emailservice") == "emailservice", "a manual pipeline names its services"
    (app / "src" / "not-a-service").mkdir()
    (app / "src" / "not-a-service" / "notes.md").write_text("no Dockerfile here\n")
    git(app, "add", "--all")
    git(app, "commit", "--quiet", "-m", "no service")
    assert changed(app) == ""
