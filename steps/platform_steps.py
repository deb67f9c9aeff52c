"""Phase 1: GitLab, the registry and its CA, app-repo / gitops-repo."""

from __future__ import annotations

import pytest
from pytest_bdd import parsers, then, when

from boutique_suite.clients import registry
from boutique_suite.context.sites import site_for
from boutique_suite.expectations import gitlab_checks, repos
from boutique_suite.reporting import evidence
from boutique_suite.reporting.evidence import Execution
from boutique_suite.run.targets import Target
from boutique_suite.run.touches import Touches, touches
from boutique_suite.run.undo import UndoStack


@when(
    parsers.parse('a small test image is pushed to "{image}" tagged with the run id'), target_fixture="pushed"
)
@touches(Touches.registry)
def push_image(target: Target, undo: UndoStack, run_id: str, image: str) -> dict:
    return registry.push_test_image(target, image, run_id, undo)


@then(parsers.parse('the registry\'s catalog lists "{repository}" with that tag'))
@touches(Touches.registry)
def tag_listed(pushed: dict, repository: str) -> None:
    registry.expect_tag_listed(pushed["client"], repository, pushed["tag"])


@then("pulling that tag back returns the digest that was pushed")
@touches(Touches.registry)
def pulled_back(pushed: dict) -> None:
    registry.expect_pulls_back(pushed["client"], pushed["tag"], pushed["digest"])


@then(
    parsers.parse('"{host}" presents a certificate issued by the registry CA the target file names'),
    target_fixture="registry_host",
)
@touches(Touches.registry)
def registry_certificate(target: Target, host: str) -> str:
    registry.expect_certificate_from_ca(target, host)
    return host


@then(parsers.parse('the certificate is valid for the name "{name}" for at least {days:d} more days'))
@touches(Touches.registry)
def certificate_valid(target: Target, registry_host: str, name: str, days: int) -> None:
    registry.expect_certificate_valid_for(target, registry_host, name, days)


@then("a client that trusts only the registry CA connects without turning verification off")
@touches(Touches.registry)
def registry_ca_client(target: Target, registry_host: str) -> None:
    registry.expect_certificate_from_ca(target, registry_host)


@then("a client that trusts only the public CAs refuses the connection")
@touches(Touches.registry)
def public_ca_client(target: Target, registry_host: str) -> None:
    registry.expect_public_cas_refuse(target, registry_host)


@then(
    parsers.parse(
        '"app-repo" holds each service\'s source, its Dockerfile and a .gitlab-ci.yml, and no '
        "Kubernetes manifests"
    )
)
@touches(Touches.git)
def app_repo_content(request: pytest.FixtureRequest, target: Target) -> None:
    if why := site_for(target).app_repo_sources_missing():
        evidence.skip_scenario(request, why)
    repos.expect_app_repo_content_in(target)


@then(parsers.parse('"gitops-repo" holds "{first}" and "{second}", and no application source or Dockerfile'))
@touches(Touches.git)
def gitops_repo_content(target: Target, first: str, second: str) -> None:
    with repos.clone(target, "gitops-repo") as root:
        repos.expect_gitops_repo_content(root, first, second)


@then("both repositories clone over HTTPS with the credentials the target file names")
@touches(Touches.git)
def both_clone(target: Target) -> None:
    repos.expect_both_clone(target, "app-repo", "gitops-repo")


@then(parsers.parse('"{url}" reports status "{status}" for every check within {seconds:d} seconds'))
@touches(Touches.gitlab)
def gitlab_ready(target: Target, url: str, status: str, seconds: int) -> None:
    gitlab_checks.expect_ready(target, url, status, seconds)


@then(parsers.parse('the GitLab API answers "{path}" with the version pinned in the target file'))
@touches(Touches.gitlab)
def gitlab_version(target: Target, path: str) -> None:
    gitlab_checks.expect_version(target, path)


@then(parsers.parse('the group "{group}" holds the projects "{first}" and "{second}"'))
@touches(Touches.gitlab)
def group_projects(target: Target, group: str, first: str, second: str) -> None:
    gitlab_checks.expect_group_projects(target, group, first, second)


@then(
    parsers.parse('a runner with the tag "{tag}" is registered for the project "{project}"'),
    target_fixture="runner",
)
@touches(Touches.gitlab)
def runner_registered(target: Target, tag: str, project: str) -> dict:
    return gitlab_checks.project_runner(target, project, tag)


@then(parsers.parse('GitLab reports that runner "{status}" and not paused'))
@touches(Touches.gitlab)
def runner_online(runner: dict, status: str) -> None:
    gitlab_checks.expect_runner_status(runner, status)


@then(parsers.parse("that runner contacted GitLab within the last {seconds:d} seconds"))
@touches(Touches.gitlab)
def runner_contacted(runner: dict, execution: Execution, seconds: int) -> None:
    execution.timing(
        "runner_last_contact_seconds", gitlab_checks.expect_contacted_within(runner, seconds), budget=seconds
    )
