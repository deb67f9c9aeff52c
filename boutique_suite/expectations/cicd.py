"""CI/CD as the scenarios see it: app-repo commits, the pipeline's jobs (gitlab-ci-local on the lab), the
gitops-repo commit the bump makes, Argo CD deploying it, and the trace from an app commit to the ReplicaSet
that runs its image. Every commit a scenario makes to app-repo or gitops-repo is reverted (``undo``).

Nothing here prints or attaches a token or a Secret's data.
"""

from __future__ import annotations

import importlib.util
import sys
import tempfile
import time
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
import yaml

from boutique_suite.clients import registry
from boutique_suite.clients.argocd import ArgoCDClient, wait_synced_and_healthy
from boutique_suite.clients.kube import Kube
from boutique_suite.context import images, sites
from boutique_suite.context.sites import JobRun, Pipelines, site_for
from boutique_suite.expectations import probes
from boutique_suite.reporting import evidence
from boutique_suite.reporting.cicd_trace import Trace
from boutique_suite.reporting.evidence import Execution
from boutique_suite.run import waits
from boutique_suite.run.targets import Target
from boutique_suite.run.undo import UndoStack

IMAGE_PREFIX = "registry.local/boutique"
BUILD_JOBS = ("build", "push")  # the pipeline's jobs before the bump
DEV_OVERLAY = "overlays/dev/kustomization.yaml"
CHECKER = (
    Path(__file__).resolve().parents[2] / "provisioning" / "cicd" / "app-repo" / "ci" / "check_dockerfiles.py"
)
BUILT_SERVICES = (  # every Online Boutique service built from app-repo (redis-cart is redis' own image)
    "adservice",
    "cartservice",
    "checkoutservice",
    "currencyservice",
    "emailservice",
    "frontend",
    "loadgenerator",
    "paymentservice",
    "productcatalogservice",
    "recommendationservice",
    "shippingservice",
)


def _pipelines(target: Target, request: pytest.FixtureRequest) -> Pipelines:
    """The target's CI; a target whose CI the suite cannot drive yet skips with the reason."""
    site = site_for(target)
    if why := site.pipelines_missing():
        evidence.skip_scenario(request, why)
    return site.pipelines()


# --- app-repo ------------------------------------------------------------------------------------------


def push_app_change(
    request: pytest.FixtureRequest, target: Target, trace: Trace, path: str, run_id: str, undo: UndoStack
) -> str:
    """A commit to app-repo's main that changes ``path`` (src/<service>); app-repo is restored afterwards."""
    ci = _pipelines(target, request)
    undo.push(
        "restore app-repo",
        lambda: ci.restore_app_repo("restore app-repo after a scenario"),
        journal=("restore_app_repo", {}),
    )
    service = Path(path).name
    note = f"{path}/CHANGELOG.md"
    trace.service = service
    trace.app_commit = ci.commit_change(
        "app-repo", {note: lambda text: f"{text}- suite run {run_id}\n"}, f"{service}: run {run_id}"
    )
    trace.pushed_at = time.monotonic()
    return trace.app_commit


def app_repo_checkout(request: pytest.FixtureRequest, target: Target, trace: Trace, tmp: Path) -> Path:
    """app-repo's head as the git server has it."""
    ci = _pipelines(target, request)
    trace.app_checkout = ci.checkout("app-repo", ci.head("app-repo"), tmp / "app-repo")
    return trace.app_checkout


# --- Dockerfiles -------------------------------------------------------------------------------------


def _checker() -> ModuleType:
    name = "boutique_check_dockerfiles"
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, CHECKER)
        assert spec and spec.loader
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module  # dataclasses resolve annotations through sys.modules
        spec.loader.exec_module(module)
    return sys.modules[name]


def expect_dockerfile_rule(checkout: Path, *rules: str) -> None:
    """Every built service has src/<service>/Dockerfile in app-repo and it keeps ``rules``."""
    checker = _checker()
    have = checker.dockerfiles(checkout / "src")
    missing = sorted(set(BUILT_SERVICES) - set(have))
    assert not missing, f"app-repo has no Dockerfile for: {missing}"
    problems = checker.check(checkout / "src", rules)
    assert not problems, "\n".join(problems)


# --- pipeline jobs -----------------------------------------------------------------------------------


def restore_gitops(target: Target, argocd: ArgoCDClient, app: str | None = None) -> None:
    """gitops-repo back to the suite's content, and Argo CD's ``app`` (default: the target's Application)
    synced to it."""
    app = app or target.application
    head = sites.gitops_repo(target).restore()  # its push webhook tells Argo CD
    wait_synced_and_healthy(argocd, app, target.timeouts.rollout, revision=head)


def run_job(
    request: pytest.FixtureRequest,
    target: Target,
    trace: Trace,
    execution: Execution,
    job: str,
    seconds: int,
    variables: dict[str, str] | None = None,
) -> JobRun:
    """Run ``job`` of app-repo's .gitlab-ci.yml at the scenario's app commit (on the lab: gitlab-ci-local,
    shell executor) and require it to pass within ``seconds``; its log goes to the report."""
    return run_jobs(request, target, trace, execution, [job], seconds, variables)[-1]


def run_jobs(
    request: pytest.FixtureRequest,
    target: Target,
    trace: Trace,
    execution: Execution,
    jobs: list[str],
    seconds: int,
    variables: dict[str, str] | None = None,
) -> list[JobRun]:
    """``jobs`` in order in one checkout at the scenario's app commit, as one pipeline runs them (a job gets
    the artifacts of the jobs before it: the push job the build job's images); each must pass in time."""
    ci = _pipelines(target, request)
    commit = trace.app_commit or ci.head("app-repo")
    results = []
    with tempfile.TemporaryDirectory(prefix="boutique-job-") as tmp:
        work = ci.checkout("app-repo", commit, Path(tmp) / "app")
        for job in jobs:
            result = ci.run_job(work, job, variables, timeout=seconds + 30)
            _record_job(trace, execution, ci, target, job, result, seconds)
            results.append(result)
    return results


def _record_job(
    trace: Trace, execution: Execution, ci: Pipelines, target: Target, job: str, result: JobRun, seconds: int
) -> None:
    trace.job, trace.job_ended = result, time.monotonic()
    trace.runner, trace.application = ci.runner, target.application
    evidence.attach_text(f"{job} job log ({ci.runner})", result.log)
    execution.timing(f"{job.replace('-', '_')}_job_seconds", result.seconds)
    tail = "\n".join(result.log.strip().splitlines()[-12:])
    assert result.passed, f"job {job} failed with exit code {result.returncode}:\n{tail}"
    assert result.seconds <= seconds, f"job {job} took {result.seconds:.1f}s, more than {seconds}s"


def run_pipeline_job(
    request: pytest.FixtureRequest,
    target: Target,
    trace: Trace,
    execution: Execution,
    argocd: ArgoCDClient,
    undo: UndoStack,
    job: str,
    seconds: int,
) -> str:
    """``job`` at the pushed commit. The bump ("update-gitops") writes to the target's gitops-repo, which is
    restored afterwards with the Application synced back. Returns the gitops-repo commit the job names."""
    skip_unrunnable_jobs(request, target, [job])
    app = target.application
    jobs = [job]
    if job == "update-gitops":
        undo.push(
            "restore gitops-repo",
            lambda: restore_gitops(target, argocd, app),
            journal=("restore_gitops", {"app": app}),
        )
        jobs = [*_build_and_push_or_stand_in(request, target, trace, execution), job]
    result = run_jobs(request, target, trace, execution, jobs, seconds)[-1]
    trace.gitops_commit = result.gitops_commit or ""
    assert trace.gitops_commit or job != "update-gitops", (
        f"the job named no gitops-repo commit:\n{result.log}"
    )
    return trace.gitops_commit


def _build_and_push_or_stand_in(
    request: pytest.FixtureRequest, target: Target, trace: Trace, execution: Execution
) -> list[str]:
    """The jobs before the bump in the pipeline: build and push where the target runs them; else the image
    is made pullable the target's way (the lab tags its stand-in), which the report calls simulated."""
    if _pipelines(target, request).unrunnable(list(BUILD_JOBS)) is None:
        return list(BUILD_JOBS)
    image = f"{IMAGE_PREFIX}/{trace.service}:{trace.short_sha}"
    if simulated := images.ensure_pullable(target, image):
        execution.simulated(simulated)
    return []


def expect_image_pushed(request: pytest.FixtureRequest, target: Target, trace: Trace, image: str) -> None:
    """The registry lists ``image`` tagged with the pushed commit's short SHA (GitLab's registry, with the
    target's credentials)."""
    if why := site_for(target).registry_lookup_missing():
        evidence.skip_scenario(request, why)
    client = registry.connect(target, image)
    registry.expect_tag_listed(client, client.repository, trace.short_sha)


def skip_unrunnable_jobs(request: pytest.FixtureRequest, target: Target, jobs: list[str]) -> None:
    """Jobs the target cannot run are skipped with the reason, never reported as passed."""
    if why := _pipelines(target, request).unrunnable(jobs):
        evidence.skip_scenario(request, why)


# --- the bump against a scratch copy -----------------------------------------------------------------


def scratch_copy_of_gitops_repo(
    request: pytest.FixtureRequest, target: Target, trace: Trace, run_id: str, undo: UndoStack
) -> str:
    """A new repository on the git server holding gitops-repo's history; deleted after the scenario."""
    ci = _pipelines(target, request)
    name = f"scratch-gitops-{run_id}"
    undo.push(f"delete the scratch repository {name}", ci.copy_repo("gitops-repo", name))
    trace.scratch_repo, trace.scratch_base = name, ci.head(name)
    return name


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
    ci = _pipelines(target, request)
    if why := ci.single_jobs_missing:
        evidence.skip_scenario(request, why)
    scratch = scratch_copy_of_gitops_repo(request, target, trace, run_id, undo)
    variables = {
        "SERVICES": service,
        "APP_COMMIT": commit,
        "IMAGE_TAG": commit[:8],
        "GITOPS_REPO_URL": ci.repo_url(scratch),
    }
    result = run_job(request, target, trace, execution, job, target.timeouts.apply + 300, variables)
    trace.gitops_commit = result.gitops_commit or ""


def expect_one_scratch_commit(
    request: pytest.FixtureRequest, target: Target, trace: Trace, commit: str
) -> None:
    ci = _pipelines(target, request)
    head = ci.head(trace.scratch_repo)
    new = ci.commits_between(trace.scratch_repo, trace.scratch_base, head)
    assert new == [trace.gitops_commit], (
        f"new commits on the scratch copy: {new}, the job named {trace.gitops_commit}"
    )
    shown = ci.show_commit(trace.scratch_repo, head, DEV_OVERLAY)
    assert commit in str(shown["message"]), f"the commit message does not name {commit}: {shown['message']!r}"
    trace.steps["gitops_commit"] = shown


def expect_image_tag_in_commit(
    request: pytest.FixtureRequest,
    target: Target,
    trace: Trace,
    path: str,
    image: str,
    tag: str,
    repo: str = "",
) -> dict[str, str]:
    shown = _pipelines(target, request).show_commit(repo or trace.scratch_repo, trace.gitops_commit, path)
    trace.steps["gitops_commit"], trace.checked_path, trace.steps["bumped_image"] = shown, path, image
    tags = _image_tags(str(shown["content"]))
    assert tags.get(image) == tag, f"{path} at {trace.gitops_commit[:8]} sets {image} to {tags.get(image)!r}"
    return tags


def expect_only_file_changed(trace: Trace) -> None:
    """The commit touches only the checked file, and in it only the bumped image's tag (whatever layout the
    file had: `kustomize edit` writes its own)."""
    commit = trace.steps["gitops_commit"]
    assert commit["files"] == [trace.checked_path], f"the commit changes {commit['files']}"
    before, after = yaml.safe_load(str(commit["parent_content"])), yaml.safe_load(str(commit["content"]))
    old_tags, new_tags = _image_tags(str(commit["parent_content"])), _image_tags(str(commit["content"]))
    bumped = sorted(name for name, tag in new_tags.items() if old_tags.get(name) != tag)
    assert bumped == [trace.steps["bumped_image"]], f"the commit changes the tags of {bumped}"
    assert set(new_tags) == set(old_tags), f"images added or removed: {set(new_tags) ^ set(old_tags)}"
    rest = {k: v for k, v in after.items() if k != "images"}
    assert rest == {k: v for k, v in before.items() if k != "images"}, "the commit changes more than images"


def _image_tags(kustomization: str) -> dict[str, str]:
    return {i["name"]: str(i.get("newTag", "")) for i in yaml.safe_load(kustomization).get("images", [])}


# --- the gitops commit, Argo CD and the rollout ------------------------------------------------------


def expect_bump_commit(request: pytest.FixtureRequest, target: Target, trace: Trace) -> None:
    """The bump's gitops-repo commit names the app commit and sets the service's image to its short SHA,
    changing that one file only."""
    image = f"{IMAGE_PREFIX}/{trace.service}"
    expect_image_tag_in_commit(request, target, trace, DEV_OVERLAY, image, trace.short_sha, "gitops-repo")
    message = str(trace.steps["gitops_commit"]["message"])
    assert trace.app_commit in message, f"the gitops commit does not name {trace.app_commit}: {message!r}"
    expect_only_file_changed(trace)


def expect_running_image(
    kube: Kube,
    target: Target,
    namespace: str,
    deployment: str,
    trace: Trace,
    execution: Execution,
    seconds: int,
) -> dict[str, Any]:
    """Deployment ``deployment`` runs the app commit's image, its rollout complete, within ``seconds`` of the
    job's end; returns the ReplicaSet that runs it."""
    image = f"{IMAGE_PREFIX}/{deployment}:{trace.short_sha}"
    rollout = probes.rollout_complete(kube, namespace, deployment)

    def probe() -> waits.Check:
        running = kube.deployment(namespace, deployment).spec.template.spec.containers[0].image
        return rollout() if running == image else waits.pending(f"{deployment} runs {running}, not {image}")

    left = seconds - (time.monotonic() - trace.job_ended)
    waits.until(
        probe,
        timeout=max(left, 1),
        interval=1,
        what=f"{deployment} running {image}",
        wake=kube.watch_deployments(namespace, int(max(left, 1)) + 1),
    )
    execution.timing("pipeline_end_to_running_seconds", time.monotonic() - trace.job_ended)
    execution.timing("app_commit_to_running_seconds", time.monotonic() - trace.pushed_at)
    trace.steps["replicaset"] = _current_replicaset(kube, namespace, deployment, image)
    return trace.steps["replicaset"]


def _current_replicaset(kube: Kube, namespace: str, deployment: str, image: str) -> dict[str, Any]:
    dep = kube.deployment(namespace, deployment)
    revision = (dep.metadata.annotations or {}).get(probes.REVISION)
    selector = ",".join(f"{k}={v}" for k, v in (dep.spec.selector.match_labels or {}).items())
    rs = probes.current_replica_set(kube, namespace, dep, selector)
    assert rs is not None, f"{deployment}: no ReplicaSet at revision {revision}"
    images = [c.image for c in rs.spec.template.spec.containers]
    assert images[0] == image, f"ReplicaSet {rs.metadata.name} runs {images}"
    pods = kube.pods(namespace, ",".join(f"{k}={v}" for k, v in rs.spec.selector.match_labels.items()))
    return {
        "name": rs.metadata.name,
        "revision": revision,
        "image": images[0],
        "replicas": rs.status.replicas or 0,
        "ready": rs.status.ready_replicas or 0,
        "created": rs.metadata.creation_timestamp.isoformat() if rs.metadata.creation_timestamp else None,
        "pods": sorted(p.metadata.name for p in pods if p.status and p.status.phase == "Running"),
    }
