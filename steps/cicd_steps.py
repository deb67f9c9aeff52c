"""Phase 5: Dockerfiles, the pipeline's jobs, the gitops bump, Argo CD deploying it, imagePullSecrets."""

from __future__ import annotations

from pathlib import Path

import pytest
from pytest_bdd import parsers, then, when

from boutique_suite.clients.argocd import ArgoCDClient
from boutique_suite.clients.kube import Kube
from boutique_suite.expectations import cicd, pull_secrets
from boutique_suite.reporting import cicd_trace, evidence
from boutique_suite.reporting.cicd_trace import Trace
from boutique_suite.reporting.evidence import Execution
from boutique_suite.run.targets import Target
from boutique_suite.run.touches import Touches, touches
from boutique_suite.run.undo import UndoStack


@pytest.fixture
def trace() -> Trace:
    return Trace()


# --- Dockerfiles -------------------------------------------------------------------------------------


@then("every service's Dockerfile in app-repo has a build stage and a separate final stage")
@touches(Touches.file_only)
def multi_stage(request: pytest.FixtureRequest, target: Target, trace: Trace, tmp_path: Path) -> None:
    checkout = cicd.app_repo_checkout(request, target, trace, tmp_path)
    cicd.expect_dockerfile_rule(checkout, "multi-stage", "pinned")


@then("no final stage starts from a compiler or SDK image")
@touches(Touches.file_only)
def lean_final_stage(trace: Trace) -> None:
    cicd.expect_dockerfile_rule(trace.app_checkout, "lean final stage")


@then("every final stage runs as a non-root user")
@touches(Touches.file_only)
def non_root_final_stage(trace: Trace) -> None:
    cicd.expect_dockerfile_rule(trace.app_checkout, "non-root")


# --- the bump against a scratch copy of gitops-repo --------------------------------------------------


@when(
    parsers.parse(
        'the "{job}" job runs for service "{service}" at commit "{commit}" '
        "against a scratch copy of gitops-repo"
    )
)
@touches(Touches.git, Touches.ci)
def bump_scratch_copy(
    request: pytest.FixtureRequest,
    target: Target,
    trace: Trace,
    execution: Execution,
    run_id: str,
    undo: UndoStack,
    job: str,
    service: str,
    commit: str,
) -> None:
    cicd.bump_scratch_copy(request, target, trace, execution, run_id, undo, job, service, commit)


@then(parsers.parse('the scratch gitops-repo gets one new commit that names app-repo commit "{commit}"'))
@touches(Touches.git)
def one_scratch_commit(request: pytest.FixtureRequest, target: Target, trace: Trace, commit: str) -> None:
    cicd.expect_one_scratch_commit(request, target, trace, commit)


@then(parsers.parse('in that commit "{path}" sets image "{image}" to tag "{tag}"'))
@touches(Touches.git)
def image_tag_in_commit(
    request: pytest.FixtureRequest, target: Target, trace: Trace, path: str, image: str, tag: str
) -> None:
    cicd.expect_image_tag_in_commit(request, target, trace, path, image, tag)


@then("that commit changes no other file")
@touches(Touches.git)
def no_other_file(trace: Trace) -> None:
    cicd.expect_only_file_changed(trace)


# --- from an app-repo commit to the running ReplicaSet -----------------------------------------------


@when(parsers.parse('a commit that changes "{path}" is pushed to app-repo\'s "{branch}" branch'))
@touches(Touches.git)
def push_app_change(
    request: pytest.FixtureRequest,
    target: Target,
    trace: Trace,
    run_id: str,
    undo: UndoStack,
    path: str,
    branch: str,
) -> None:
    assert branch == "main", "the lab's app-repo pipeline runs for main"
    cicd.push_app_change(request, target, trace, path, run_id, undo)


@then(parsers.parse('its pipeline\'s "{job}" job succeeds within {seconds:d} seconds'))
@touches(Touches.ci)
def job_succeeds(
    request: pytest.FixtureRequest,
    target: Target,
    trace: Trace,
    execution: Execution,
    argocd: ArgoCDClient,
    undo: UndoStack,
    story: dict,
    job: str,
    seconds: int,
) -> None:
    story["commit"] = cicd.run_pipeline_job(request, target, trace, execution, argocd, undo, job, seconds)


@then(parsers.parse('its pipeline\'s "{first}" and "{second}" jobs succeed within {seconds:d} seconds'))
@touches(Touches.ci)
def jobs_succeed(
    request: pytest.FixtureRequest,
    target: Target,
    trace: Trace,
    execution: Execution,
    first: str,
    second: str,
    seconds: int,
) -> None:
    cicd.skip_unrunnable_jobs(request, target, [first, second])
    cicd.run_jobs(request, target, trace, execution, [first, second], seconds)


@then(parsers.parse('the registry holds "{image}" tagged with that commit\'s short SHA'))
@touches(Touches.registry)
def registry_holds(request: pytest.FixtureRequest, target: Target, trace: Trace, image: str) -> None:
    cicd.expect_image_pushed(request, target, trace, image)


@then(
    parsers.parse(
        "gitops-repo's dev overlay sets the {service} image to that commit's short SHA "
        "in a commit that names it"
    )
)
@touches(Touches.git)
def bump_commit(request: pytest.FixtureRequest, target: Target, trace: Trace, service: str) -> None:
    assert service == trace.service, f"the pushed commit changed {trace.service}, not {service}"
    cicd.expect_bump_commit(request, target, trace)


@then(
    parsers.parse(
        'Deployment "{deployment}" in "{namespace}" runs that image within {seconds:d} seconds of the '
        "pipeline's end"
    )
)
@touches(Touches.argocd, Touches.control_plane, Touches.node_runtime)
def runs_that_image(
    kube: Kube,
    target: Target,
    trace: Trace,
    execution: Execution,
    deployment: str,
    namespace: str,
    seconds: int,
) -> None:
    cicd.expect_running_image(kube, target, namespace, deployment, trace, execution, seconds)


@then("the trace from the app-repo commit to the running ReplicaSet is attached to the report")
@touches(Touches.git, Touches.argocd, Touches.control_plane)
def trace_attached(argocd: ArgoCDClient, trace: Trace) -> None:
    cicd_trace.attach_trace(argocd, trace)


# --- imagePullSecrets --------------------------------------------------------------------------------


@then(
    parsers.parse(
        'every ServiceAccount in "{namespace}", including "default", lists the imagePullSecret "{secret}"'
    )
)
@touches(Touches.control_plane)
def accounts_have_pull_secret(kube: Kube, story: dict, namespace: str, secret: str) -> None:
    story["namespace"] = namespace
    story["accounts"] = pull_secrets.expect_pull_secret_on_service_accounts(kube, namespace, secret)


@then(parsers.parse('"{name}" is a Secret of type "{kind}" for "{registry}"'))
@touches(Touches.control_plane)
def dockerconfig_secret(kube: Kube, story: dict, name: str, kind: str, registry: str) -> None:
    pull_secrets.expect_dockerconfig_secret(kube, story["namespace"], name, kind, registry)


@then(
    parsers.parse(
        'a pod created with one of those ServiceAccounts and no pull secret of its own is given "{secret}"'
    )
)
@touches(Touches.control_plane)
def admission_adds_pull_secret(kube: Kube, story: dict, secret: str) -> None:
    account = "frontend" if "frontend" in story["accounts"] else story["accounts"][0]
    pull_secrets.expect_admission_adds_pull_secret(kube, story["namespace"], account, secret)


@when(
    parsers.parse('a pod in "{namespace}" whose ServiceAccount has no pull secret must pull "{image}"'),
    target_fixture="pull",
)
@touches(Touches.registry, Touches.node_runtime)
def pull_without_secret(kube: Kube, undo: UndoStack, namespace: str, image: str) -> dict:
    pod = pull_secrets.start_pull(kube, namespace, image, None, undo)
    return {"namespace": namespace, "image": image, "pod": pod}


@then(parsers.parse("the node's pull fails with an authentication error within {seconds:d} seconds"))
@touches(Touches.registry, Touches.node_runtime)
def pull_refused(kube: Kube, pull: dict, seconds: int) -> None:
    refused = pull_secrets.expect_pull_refused(kube, pull["namespace"], pull["pod"], seconds)
    evidence.attach_text("pull refused without credentials", refused)


@when(parsers.parse('a pod naming the pull secret "{secret}" must pull the same image'))
@touches(Touches.registry, Touches.node_runtime)
def pull_with_secret(kube: Kube, undo: UndoStack, pull: dict, secret: str) -> None:
    pull["pod"] = pull_secrets.start_pull(kube, pull["namespace"], pull["image"], secret, undo)


@then(parsers.parse("that pod runs within {seconds:d} seconds"))
@touches(Touches.registry, Touches.node_runtime)
def pull_allowed(kube: Kube, execution: Execution, pull: dict, seconds: int) -> None:
    ran = pull_secrets.expect_pod_runs(kube, pull["namespace"], pull["pod"], seconds)
    execution.timing("pull_with_secret_seconds", ran)
