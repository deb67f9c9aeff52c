"""GitOps changes that roll out: a commit's rolling update, a rollback with auto-sync suspended, and a tag
that cannot be pulled. The fixtures (argocd, app_ns, gitops, story, commits) are gitops_steps'."""

from __future__ import annotations

import time

from pytest_bdd import given, parsers, then, when

from boutique_suite.actions import gitops_changes
from boutique_suite.clients import gitops_repo
from boutique_suite.clients.argocd import ArgoCDClient, seconds_since
from boutique_suite.clients.kube import Kube
from boutique_suite.expectations import gitops_checks, rollout
from boutique_suite.reporting import evidence
from boutique_suite.reporting.evidence import Execution
from boutique_suite.run.targets import Target
from boutique_suite.run.touches import Touches, touches
from boutique_suite.run.undo import UndoStack

# --- commits to gitops-repo and rolling update -------------------------------------------------------


@when(
    parsers.parse(
        'a commit to gitops-repo changes the image tag of Deployment "{deployment}" to another tag '
        "that exists in the registry"
    )
)
@touches(Touches.git)
def commit_new_tag(
    kube: Kube,
    commits: gitops_changes.ScenarioCommits,
    app_ns: str,
    run_id: str,
    undo: UndoStack,
    story: dict,
    deployment: str,
) -> None:
    story["watch"] = rollout.watch_availability(kube, app_ns, deployment, undo)
    story["commit"], story["committed_at"] = commits.registry_image_tag(deployment, f"rollout-{run_id}")


@when(
    parsers.parse(
        'a commit to gitops-repo adds the annotation "{key}" with the run id to the frontend\'s ConfigMap'
    )
)
@touches(Touches.git)
def commit_annotation(commits: gitops_changes.ScenarioCommits, run_id: str, story: dict, key: str) -> None:
    story["pushed_at"] = gitops_checks.utc_now()
    story["commit"] = commits.frontend_config_annotation(key, run_id)
    story["annotation"] = (key, run_id)


@then("Argo CD heard of that commit from gitops-repo's push webhook")
@touches(Touches.argocd, Touches.git)
def webhook_told_argocd(target: Target, kube: Kube, story: dict) -> None:
    app = gitops_changes.application(story)
    line = gitops_checks.expect_webhook_refresh(target, kube, app, story["pushed_at"])
    evidence.attach_text("Argo CD's log: the push webhook's refresh", line)


@then(
    parsers.re(
        r"Argo CD syncs that commit within (?P<seconds>\d+) seconds(?P<alone> without anyone asking it "
        r"to)?"
    ),
    converters={"seconds": int},
)
@touches(Touches.argocd)
def syncs_commit(
    argocd: ArgoCDClient, execution: Execution, story: dict, seconds: int, alone: str | None
) -> None:
    app = gitops_changes.application(story)
    took = gitops_checks.expect_sync_of(argocd, app, story["commit"], seconds, automated=True)
    execution.timing("commit_to_sync_seconds", took, budget=seconds)


@then("the frontend's ConfigMap in the cluster carries that annotation")
@touches(Touches.control_plane)
def configmap_annotated(kube: Kube, app_ns: str, story: dict) -> None:
    key, value = story["annotation"]
    annotations = kube.core.read_namespaced_config_map("frontend-config", app_ns).metadata.annotations or {}
    assert annotations.get(key) == value, f"frontend-config annotations: {annotations}"


@then(parsers.parse('the rollout of Deployment "{deployment}" finishes within {seconds:d} seconds'))
@touches(Touches.control_plane, Touches.node_runtime)
def rollout_finishes(kube: Kube, app_ns: str, execution: Execution, deployment: str, seconds: int) -> None:
    took = rollout.expect_finished(kube, app_ns, deployment, seconds)
    execution.timing("rollout_seconds", took, budget=seconds)


@then(
    parsers.parse(
        'the available replicas of Deployment "{deployment}" never dropped below the desired count '
        "during the rollout"
    )
)
@touches(Touches.control_plane, Touches.node_runtime)
def never_dropped(story: dict, deployment: str) -> None:
    rollout.expect_no_drop_below_desired(story["watch"].stop())


# --- rollback --------------------------------------------------------------------------------------


@given(
    parsers.parse(
        'a commit to gitops-repo changed the image tag of Deployment "{deployment}" and Argo CD deployed it'
    )
)
@touches(Touches.git, Touches.argocd)
def deployed_new_tag(
    kube: Kube,
    app_ns: str,
    commits: gitops_changes.ScenarioCommits,
    run_id: str,
    story: dict,
    deployment: str,
) -> None:
    story["previous_image"] = rollout.running_image(kube, app_ns, deployment)
    story["commit"] = commits.deploy_registry_image_tag(deployment, f"rollout-{run_id}")


@when(parsers.parse('auto-sync of the Application "{app}" is suspended'))
@touches(Touches.argocd)
def suspend_auto_sync(argocd: ArgoCDClient, undo: UndoStack, story: dict, app: str) -> None:
    story["automated"] = gitops_changes.suspend_auto_sync(argocd, undo, app)


@when(parsers.parse('the Application "{app}" is rolled back to its previous history entry'))
@touches(Touches.argocd)
def roll_back(argocd: ArgoCDClient, app: str) -> None:
    entries = argocd.application(app)["status"]["history"]
    assert len(entries) >= 2, f"{app} has {len(entries)} history entries, a rollback needs 2"
    argocd.rollback(app, entries[-2]["id"])


@then(parsers.parse('Deployment "{deployment}" runs its previous image again within {seconds:d} seconds'))
@touches(Touches.control_plane, Touches.node_runtime)
def previous_image(
    kube: Kube, app_ns: str, execution: Execution, story: dict, deployment: str, seconds: int
) -> None:
    rollout.expect_back_on_image(kube, app_ns, deployment, story["previous_image"], seconds, execution)


@then(
    parsers.parse(
        'the Application "{app}" stays OutOfSync with gitops-repo for {seconds:d} seconds while '
        "auto-sync is suspended"
    )
)
@touches(Touches.argocd)
def stays_out_of_sync(argocd: ArgoCDClient, app: str, seconds: int) -> None:
    gitops_checks.expect_stays_out_of_sync(argocd, app, seconds)


@when(parsers.parse('auto-sync of the Application "{app}" is restored'))
@touches(Touches.argocd)
def restore_auto_sync(argocd: ArgoCDClient, story: dict, app: str) -> None:
    argocd.set_automated(app, story["automated"])


# --- a tag that cannot be pulled ---------------------------------------------------------------------


@when(parsers.parse('a commit to gitops-repo changes the image tag of Deployment "{deployment}" to "{tag}"'))
@touches(Touches.git)
def commit_unpullable_tag(
    kube: Kube,
    commits: gitops_changes.ScenarioCommits,
    app_ns: str,
    story: dict,
    deployment: str,
    tag: str,
) -> None:
    story["previous_image"] = rollout.running_image(kube, app_ns, deployment)
    story["bad_image"] = gitops_changes.image(deployment, tag)
    story["commit"], story["committed_at"] = commits.image_tag(deployment, tag)


@when(parsers.parse('a commit to gitops-repo sets {name} to "{value}" for Deployment "{deployment}"'))
@touches(Touches.git)
def commit_env(
    argocd: ArgoCDClient,
    commits: gitops_changes.ScenarioCommits,
    story: dict,
    name: str,
    value: str,
    deployment: str,
) -> None:
    story["commit"] = commits.env(deployment, name, value)


@then(
    parsers.parse(
        'a new pod of Deployment "{deployment}" reports ImagePullBackOff within {seconds:d} seconds'
    )
)
@touches(Touches.node_runtime)
def pull_backoff(
    kube: Kube, app_ns: str, execution: Execution, story: dict, deployment: str, seconds: int
) -> None:
    rollout.expect_pull_backoff(kube, app_ns, deployment, story["bad_image"], seconds)
    took = seconds_since(story["committed_at"])
    execution.timing("commit_to_image_pull_backoff_seconds", took, budget=seconds)


@then(parsers.parse('the old pods of Deployment "{deployment}" stay available'))
@touches(Touches.control_plane, Touches.node_runtime)
def old_pods_stay(kube: Kube, app_ns: str, story: dict, deployment: str) -> None:
    rollout.expect_old_pods_stay(kube, app_ns, deployment, story["bad_image"])


@then(
    parsers.parse(
        'the Application "{app}" is Degraded within {seconds:d} seconds, once the frontend\'s progress '
        "deadline has passed"
    )
)
@touches(Touches.argocd)
def app_degraded(
    argocd: ArgoCDClient, kube: Kube, app_ns: str, execution: Execution, story: dict, app: str, seconds: int
) -> None:
    since = story["committed_at"]
    took = rollout.expect_degraded_after_deadline(argocd, kube, app, app_ns, "frontend", since, seconds)
    execution.timing("commit_to_degraded_seconds", took, budget=seconds)


@when("that commit is reverted in gitops-repo")
@touches(Touches.git)
def revert_commit(gitops: gitops_repo.Repo, argocd: ArgoCDClient, story: dict) -> None:
    story["commit"] = gitops.restore()
    story["reverted_at"] = time.monotonic()


@then(
    parsers.parse(
        'the rollout of Deployment "{deployment}" finishes within {seconds:d} seconds with the previous image'
    )
)
@touches(Touches.control_plane, Touches.node_runtime)
def rolled_back(
    kube: Kube,
    argocd: ArgoCDClient,
    app_ns: str,
    execution: Execution,
    story: dict,
    deployment: str,
    seconds: int,
) -> None:
    rollout.expect_back_on_image(kube, app_ns, deployment, story["previous_image"], seconds, execution)
    rollout.expect_healthy_again(argocd, gitops_changes.application(story))
    execution.timing("revert_to_rolled_back_seconds", seconds_since(story["reverted_at"]), budget=seconds)
