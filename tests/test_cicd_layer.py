"""Layer 5 on the lab: ensure publishes app-repo's content once (a second run changes nothing) and names
what it lacks; check reports it. Runs against a git server of its own (never the shared lab's)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from ports import free_port

from boutique_suite.run import targets
from provisioning import phase5_cicd
from provisioning.lab.services import gitserver, pipeline
from provisioning.layer import LayerUnavailable

pytestmark = pytest.mark.lab


@pytest.fixture(scope="module")
def lab_target() -> targets.Target:
    return targets.load("lab")


@pytest.fixture
def server(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[gitserver.GitServer]:
    state = tmp_path / "git"
    srv = gitserver.ensure(state=state, port=free_port())
    for repo in gitserver.REPOS:
        gitserver.create_repo(srv, repo)
    monkeypatch.setattr(gitserver, "running", lambda state=state: srv)
    yield srv
    gitserver.stop(state)


def test_second_ensure_changes_nothing(lab_target: targets.Target, server: gitserver.GitServer) -> None:
    if pipeline.missing_tools():
        pytest.skip("; ".join(pipeline.missing_tools()))
    first = phase5_cicd.ensure(lab_target)
    assert first.ready and first.changed
    assert first.components["gitlab-ci-local"] == pipeline.GITLAB_CI_LOCAL_VERSION
    second = phase5_cicd.ensure(lab_target)
    assert second.ready and not second.changed
    assert second.components["app-repo"] == first.components["app-repo"]
    assert phase5_cicd.check(lab_target).components["app-repo"] == first.components["app-repo"]


def test_app_repo_holds_the_pipeline_and_dockerfiles(
    lab_target: targets.Target, server: gitserver.GitServer, tmp_path: Path
) -> None:
    if pipeline.missing_tools():
        pytest.skip("; ".join(pipeline.missing_tools()))
    head = phase5_cicd.ensure(lab_target).components["app-repo"]
    work = pipeline.checkout(server, "app-repo", head, tmp_path / "app")
    assert (work / ".gitlab-ci.yml").is_file()
    assert (work / "ci" / "update-gitops.sh").stat().st_mode & 0o111, "the bump script is executable"
    assert len(list(work.glob("src/*/Dockerfile"))) == 11


def test_a_missing_tool_makes_the_layer_unavailable_with_the_way_to_get_it(
    lab_target: targets.Target, server: gitserver.GitServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(pipeline, "GITLAB_CI_LOCAL", Path("/nonexistent/gitlab-ci-local"))
    with pytest.raises(
        LayerUnavailable, match=r"layer 5 \(CI/CD\) not provisioned: missing: gitlab-ci-local"
    ):
        phase5_cicd.ensure(lab_target)
    assert not phase5_cicd.check(lab_target).ready
