"""app-repo's "update-gitops" job, run for real by gitlab-ci-local against a git server of the lab's kind
(its own state directory, a free port and supervisor records in tmp, never the shared lab's: marker
``standalone``, run beside the lab's session): one commit naming the app commit, the tag written by
`kustomize edit set image`, idempotent, bad input and an unreachable repository refused with one clear
line, and two jobs racing: both bumps land, none is lost."""

from __future__ import annotations

import concurrent.futures
import os
import shlex
import shutil
import stat
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from ports import free_port

from provisioning.lab import processes
from provisioning.lab.services import boutique, gitrepos, gitserver, pipeline

pytestmark = pytest.mark.standalone

OVERLAY = "overlays/dev/kustomization.yaml"


@pytest.fixture(scope="module", autouse=True)
def tools() -> None:
    missing = pipeline.missing_tools()
    if missing:
        pytest.skip("; ".join(missing))


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[gitserver.GitServer]:
    state = tmp_path_factory.mktemp("cicd-state") / "git"
    with pytest.MonkeyPatch.context() as mp:  # the supervisor's records and logs in tmp, apart from the lab's
        mp.setattr(processes, "PLATFORM", state.parent / "platform")
        srv = gitserver.ensure(state=state, port=free_port())
        for repo in gitserver.REPOS:
            gitserver.create_repo(srv, repo)
        pipeline.publish_app_repo(srv)
        yield srv
        gitserver.stop(state)


@pytest.fixture
def gitops_head(server: gitserver.GitServer) -> str:
    """gitops-repo back at the suite's content before each test."""
    return boutique.publish_gitops_content(server, message="gitops-repo content for a bump test")


@pytest.fixture
def app(server: gitserver.GitServer, tmp_path: Path) -> Path:
    """A checkout of app-repo at its head: the job's working directory."""
    return pipeline.checkout(server, "app-repo", gitrepos.head(server, "app-repo"), tmp_path / "app-repo")


def images(text: str) -> dict[str, str]:
    return {i["name"]: i.get("newTag", "") for i in yaml.safe_load(text)["images"]}


def bump(
    server: gitserver.GitServer,
    app: Path,
    services: str,
    sha: str,
    env: dict[str, str] | None = None,
    **extra: str,
) -> pipeline.JobResult:
    variables = {"SERVICES": services, "APP_COMMIT": sha, "IMAGE_TAG": sha[:8], **extra}
    return pipeline.run_job(server, app, "update-gitops", variables, extra_env=env)


def test_bump_makes_one_commit_that_names_the_app_commit(
    server: gitserver.GitServer, app: Path, gitops_head: str
) -> None:
    sha = "0123abcd" * 5
    result = bump(server, app, "frontend", sha)
    assert result.passed, result.log
    commit = pipeline.show_commit(server, "gitops-repo", result.gitops_commit or "", OVERLAY)
    assert commit["parents"] == [gitops_head]
    assert commit["files"] == [OVERLAY]
    assert sha in str(commit["message"]) and "[skip ci]" in str(commit["message"])
    assert f"app-repo: {server.repo_url('app-repo').removesuffix('.git')}" in str(commit["message"])
    assert "gitlab.com" not in str(commit["message"]), "no placeholder URL of gitlab-ci-local"
    assert images(str(commit["content"]))["registry.local/boutique/frontend"] == "0123abcd"
    changed = [
        line for line in str(commit["diff"]).splitlines() if line[:1] in "+-" and line[:3] not in "+++---"
    ]
    assert changed == ["-  newTag: 5f3c2a1b", "+  newTag: 0123abcd"], "kustomize edit changed one line"


def test_second_run_with_the_same_sha_makes_no_commit(
    server: gitserver.GitServer, app: Path, gitops_head: str
) -> None:
    sha = "4567cdef" * 5
    first = bump(server, app, "cartservice currencyservice", sha)
    assert first.passed, first.log
    head = gitrepos.head(server, "gitops-repo")
    second = bump(server, app, "cartservice currencyservice", sha)
    assert second.passed, second.log
    assert "nothing to commit" in second.log
    assert gitrepos.head(server, "gitops-repo") == head


def test_unknown_service_is_refused_with_one_clear_line(
    server: gitserver.GitServer, app: Path, gitops_head: str
) -> None:
    result = bump(server, app, "frontend nosuchservice", "89abcdef" * 5)
    assert not result.passed
    errors = [line for line in result.log.splitlines() if "update-gitops: ERROR" in line]
    assert errors and errors[0].endswith(
        "unknown service 'nosuchservice': overlays/dev/kustomization.yaml has no image "
        "registry.local/boutique/nosuchservice"
    )
    assert "Traceback" not in result.log
    assert gitrepos.head(server, "gitops-repo") == gitops_head, "nothing was pushed"


@pytest.mark.parametrize(
    ("tag", "expected"),
    [("latest", "IMAGE_TAG must be a commit SHA"), ("0123abc!", "IMAGE_TAG must be a commit SHA")],
)
def test_a_tag_that_is_not_a_commit_sha_is_refused(
    server: gitserver.GitServer, app: Path, gitops_head: str, tag: str, expected: str
) -> None:
    result = pipeline.run_job(
        server, app, "update-gitops", {"SERVICES": "frontend", "APP_COMMIT": "0" * 40, "IMAGE_TAG": tag}
    )
    assert not result.passed
    assert f"update-gitops: ERROR: {expected}" in result.log
    assert gitrepos.head(server, "gitops-repo") == gitops_head


def test_unreachable_gitops_repo_is_a_clear_error(server: gitserver.GitServer, app: Path) -> None:
    closed = f"https://127.0.0.1:{free_port()}/gitops-repo.git"
    result = bump(server, app, "frontend", "fedcba98" * 5, GITOPS_REPO_URL=closed)
    assert not result.passed
    errors = [line for line in result.log.splitlines() if "update-gitops: ERROR" in line]
    assert errors and f"cannot clone branch main of {closed}" in errors[0], result.log
    assert (
        "Connection refused" in errors[0]
        or "Could not connect" in errors[0]
        or "Failed to connect" in errors[0]
    )


def test_the_token_never_shows_in_the_job_log(
    server: gitserver.GitServer, app: Path, gitops_head: str
) -> None:
    result = bump(server, app, "adservice", "13579bdf" * 5)
    assert result.passed, result.log
    assert server.token() not in result.log
    found = [p for p in app.rglob("*credentials*") if "vendor" not in p.parts]  # not grpc's credentials pkg
    assert not found, "no credential file in the checkout"


BARRIER_WAIT = 200  # s: within the push's own bound (PUSH_TIMEOUT) and the job's (pipeline.JOB_TIMEOUT)
PUSH_TIMEOUT = 240  # s: the job's GIT_TIMEOUT; its default 60 s would kill a push held by the barrier


def barrier_hooks(tmp_path: Path, parties: int) -> tuple[Path, Path]:
    """A pre-push hook that holds each job's first push until ``parties`` jobs are ready to push: every job
    has cloned the same head and committed on it, so all but one of the pushes must be rejected. A job
    slow to start (2 busy cores) is waited for; after ``BARRIER_WAIT`` seconds the hook gives up and
    leaves ``gave-up`` (the returned path) for the test to report."""
    hooks = tmp_path / "hooks"
    hooks.mkdir()
    gate = tmp_path / "gate"
    gate.mkdir()
    hook = hooks / "pre-push"
    hook.write_text(
        "#!/bin/sh\n"
        f'gate="{gate}"\n'
        'mark="$gate/$(git rev-parse HEAD)"\n'
        '[ -e "$gate/released" ] && exit 0\n'
        'touch "$mark"\n'
        f"deadline=$(( $(date +%s) + {BARRIER_WAIT} ))\n"
        f'while [ "$(ls "$gate" | wc -l)" -lt {parties} ]; do\n'
        '  [ "$(date +%s)" -ge "$deadline" ] && { touch "$gate/../gave-up"; break; }\n'
        "  sleep 0.1\n"
        "done\n"
        'touch "$gate/released"\n'
    )
    hook.chmod(hook.stat().st_mode | stat.S_IXUSR)
    return hooks, tmp_path / "gave-up"


def test_concurrent_bumps_both_land(server: gitserver.GitServer, gitops_head: str, tmp_path: Path) -> None:
    hooks, gave_up = barrier_hooks(tmp_path, parties=2)
    env = {"GIT_CONFIG_COUNT": "1", "GIT_CONFIG_KEY_0": "core.hooksPath", "GIT_CONFIG_VALUE_0": str(hooks)}
    checkouts = [
        pipeline.checkout(server, "app-repo", gitrepos.head(server, "app-repo"), tmp_path / f"app-{i}")
        for i in range(2)
    ]
    jobs = {"frontend": "aaaa1111" * 5, "cartservice": "bbbb2222" * 5}
    with concurrent.futures.ThreadPoolExecutor(max_workers=2) as pool:
        futures = [
            pool.submit(bump, server, checkout, service, sha, env, GIT_TIMEOUT=str(PUSH_TIMEOUT))
            for checkout, (service, sha) in zip(checkouts, jobs.items(), strict=True)
        ]
        results = [f.result() for f in futures]
    assert not gave_up.exists(), "the barrier gave up waiting for the second job's push: no race"
    for result in results:
        assert result.passed, result.log
    retried = [r for r in results if "push rejected" in r.log]
    assert len(retried) == 1, "exactly one job lost the race and retried on the new head"
    head = gitrepos.head(server, "gitops-repo")
    landed = pipeline.commits_between(server, "gitops-repo", gitops_head, head)
    assert len(landed) == 2, "both bump commits are on main"
    final = images(str(pipeline.show_commit(server, "gitops-repo", head, OVERLAY)["content"]))
    assert final["registry.local/boutique/frontend"] == "aaaa1111"
    assert final["registry.local/boutique/cartservice"] == "bbbb2222"


LOCKED = (
    "remote: error: cannot lock ref 'refs/heads/main': is at 4031d1c0ffee4031d1c0ffee4031d1c0ffee4031 "
    "but expected 1234567890abcdef1234567890abcdef12345678",
    " ! [remote rejected] HEAD -> main (failed to update ref)",
    "error: failed to push some refs to the gitops-repo",
)


def test_a_push_that_lost_the_ref_lock_is_retried_even_when_a_sha_holds_403(
    server: gitserver.GitServer, app: Path, gitops_head: str, tmp_path: Path
) -> None:
    """What a concurrent push's loser reads from the server: a retry, never "refused" (a SHA that contains
    403 is no HTTP 403; this was the CI flake of test_concurrent_bumps_both_land, about 1 race in 50)."""
    shim, mark = tmp_path / "bin", tmp_path / "pushed-once"
    shim.mkdir()
    (shim / "git").write_text(
        "#!/bin/sh\n"
        'for a in "$@"; do [ "$a" = push ] && push=1; done\n'
        f'if [ -n "$push" ] && [ ! -e {mark} ]; then touch {mark}\n'
        + "".join(f"  echo {shlex.quote(line)} >&2\n" for line in LOCKED)
        + "  exit 1\nfi\n"
        f'exec {shutil.which("git")} "$@"\n'
    )
    (shim / "git").chmod(0o755)
    path = os.pathsep.join([str(shim), str(pipeline.kustomize_dir()), os.environ["PATH"]])
    result = bump(server, app, "frontend", "4031abcd" * 5, {"PATH": path})
    assert mark.exists(), result.log  # the shim saw the push
    assert result.passed, result.log
    assert "push rejected" in result.log and "refused" not in result.log


def test_a_push_that_outlasts_git_timeout_is_named_in_the_error(
    server: gitserver.GitServer, app: Path, gitops_head: str, tmp_path: Path
) -> None:
    hooks = tmp_path / "hooks"
    hooks.mkdir()
    (hooks / "pre-push").write_text("#!/bin/sh\nsleep 10\n")
    (hooks / "pre-push").chmod(0o755)
    env = {"GIT_CONFIG_COUNT": "1", "GIT_CONFIG_KEY_0": "core.hooksPath", "GIT_CONFIG_VALUE_0": str(hooks)}
    result = bump(server, app, "frontend", "2468ace0" * 5, env, GIT_TIMEOUT="2")
    assert not result.passed
    errors = [line for line in result.log.splitlines() if "update-gitops: ERROR" in line]
    assert errors and errors[0].endswith("failed: git push timed out after 2s (GIT_TIMEOUT)"), result.log
    assert gitrepos.head(server, "gitops-repo") == gitops_head


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        ({"GITOPS_REPO_URL": ""}, "GITOPS_REPO_URL is not set (the HTTPS URL of gitops-repo)"),
        (
            {"GITOPS_REPO_URL": "http://127.0.0.1:1/gitops-repo.git"},
            "GITOPS_REPO_URL must be an https:// URL, got 'http://127.0.0.1:1/gitops-repo.git'",
        ),
        (
            {"GITOPS_REPO_URL": "http://bot:secret@127.0.0.1:1/gitops-repo.git"},
            "GITOPS_REPO_URL must not carry credentials; set GITOPS_TOKEN instead",
        ),
        (
            {"GITOPS_REPO_URL": "https://bot:secret@127.0.0.1:1/gitops-repo.git"},
            "GITOPS_REPO_URL must not carry credentials; set GITOPS_TOKEN instead",
        ),
        ({"GITOPS_TOKEN": ""}, "GITOPS_TOKEN is not set (the project access token of the bump job)"),
        ({"APP_COMMIT": "fedcba9876"}, "IMAGE_TAG 0123abcd is not a prefix of APP_COMMIT fedcba9876"),
        ({"SERVICES": "Frontend"}, "invalid service name 'Frontend' (lowercase letters, digits, '-')"),
        ({"GITOPS_OVERLAY": "../etc"}, "GITOPS_OVERLAY must be a path inside gitops-repo, got '../etc'"),
    ],
)
def test_bad_input_is_one_clear_line_before_any_network_call(env: dict[str, str], expected: str) -> None:
    """The script alone, as a runner would start it: each bad variable is named, nothing is contacted."""
    base = {
        "PATH": f"{pipeline.kustomize_dir()}:/usr/bin:/bin",
        "GITOPS_REPO_URL": "https://127.0.0.1:1/gitops-repo.git",
        "GITOPS_TOKEN": "not-a-real-token",
        "IMAGE_TAG": "0123abcd",
        "APP_COMMIT": "0123abcd" * 5,
        "SERVICES": "frontend",
    }
    script = pipeline.APP_REPO / "ci" / "update-gitops.sh"
    proc = subprocess.run([str(script)], env={**base, **env}, capture_output=True, text=True, timeout=30)
    assert proc.returncode == 1
    assert proc.stderr.strip().splitlines() == [f"update-gitops: ERROR: {expected}"]
    assert "not-a-real-token" not in proc.stdout + proc.stderr


def commit_with_digits_only_tag(server: gitserver.GitServer, tmp_path: Path) -> str:
    """An app-repo commit on main whose short SHA is all digits, as about one in 43 is: kustomize writes
    such a tag quoted (``newTag: "12345678"``). Mined locally with `git commit-tree`, then pushed."""
    env = {**gitrepos.client_env(server), **gitrepos.author_env()}
    work = pipeline.checkout(server, "app-repo", gitrepos.head(server, "app-repo"), tmp_path / "mine")

    def git(*args: str) -> str:
        return subprocess.run(
            ["git", *args], cwd=work, env=env, capture_output=True, text=True, check=True
        ).stdout

    for attempt in range(5000):
        sha = git("commit-tree", "HEAD^{tree}", "-p", "HEAD", "-m", f"b ({attempt})").strip()
        if sha[:8].isdigit():
            git("push", "--quiet", "origin", f"{sha}:refs/heads/main")
            return sha
    raise AssertionError("no all-digit short SHA in 5000 commits")


@pytest.mark.parametrize("newer_tag", ["any", "digits only"])
def test_a_late_pipeline_never_takes_a_service_back(
    server: gitserver.GitServer, gitops_head: str, tmp_path: Path, newer_tag: str
) -> None:
    """Two app commits, the later one deployed first: the bump of the earlier one changes nothing, also when
    the later one's tag is all digits (kustomize quotes it in the overlay)."""
    older = pipeline.commit_change(
        server, "app-repo", {"src/frontend/CHANGELOG.md": lambda t: t + "a\n"}, "a"
    )
    if newer_tag == "any":
        newer = pipeline.commit_change(
            server, "app-repo", {"src/frontend/CHANGELOG.md": lambda t: t + "b\n"}, "b"
        )
    else:
        newer = commit_with_digits_only_tag(server, tmp_path)
    first = bump(server, pipeline.checkout(server, "app-repo", newer, tmp_path / "newer"), "frontend", newer)
    assert first.passed, first.log
    head = gitrepos.head(server, "gitops-repo")
    late = bump(server, pipeline.checkout(server, "app-repo", older, tmp_path / "older"), "frontend", older)
    assert late.passed, late.log
    assert (
        f"already deploys {newer[:8]}, a later app-repo commit than {older[:8]}: not going back" in late.log
    )
    assert gitrepos.head(server, "gitops-repo") == head
    pipeline.publish_app_repo(server)
