"""Phase 4 and the GitOps validation themes: sync, history, self-heal, drift recovery, rolling update."""

from __future__ import annotations

import time

import pytest
from kubernetes import client
from pytest_bdd import given, parsers, then, when

from boutique_suite import (
    drift,
    evidence,
    gitops_changes,
    gitops_checks,
    gitops_repo,
    manifests,
    rollout,
    storefront,
)
from boutique_suite.argocd import ArgoCDClient, seconds_since, wait_synced_and_healthy
from boutique_suite.evidence import Execution
from boutique_suite.kube import Kube
from boutique_suite.sites import site_for
from boutique_suite.targets import Target
from boutique_suite.touches import Touches, touches
from boutique_suite.undo import UndoStack

SYNCED_SELF_HEAL = 'the Application "{app}" is Synced and Healthy within {seconds:d} seconds'


@pytest.fixture
def argocd(request: pytest.FixtureRequest, target: Target, story: dict) -> ArgoCDClient:
    client = gitops_checks.argocd_client(target)
    yield client
    evidence.attach_application(client, gitops_changes.application(story))  # pass or fail: the evidence


@pytest.fixture
def app_ns(request: pytest.FixtureRequest, target: Target, kube: Kube) -> str:
    yield target.namespaces.dev
    if request.node.stash.get(evidence.FAILED_KEY, False):  # the Boutique's events, YAML and pod logs
        evidence.attach_namespace(kube, target.namespaces.dev)


@pytest.fixture
def gitops(target: Target) -> gitops_repo.Repo:
    try:
        return gitops_repo.gitops_repo(target)
    except gitops_repo.RepoUnavailable as exc:
        pytest.skip(f"gitops-repo cannot be changed here: {exc}")


@pytest.fixture
def story(target: Target) -> dict:
    """What earlier steps of the scenario did (the drift, the commit, watches), and the Application it works
    on: the target's, unless a step names another."""
    return {"app": target.application}


@pytest.fixture
def commits(
    argocd: ArgoCDClient, gitops: gitops_repo.Repo, target: Target, undo: UndoStack, story: dict
) -> gitops_changes.ScenarioCommits:
    """The scenario's commits to gitops-repo, each reverted."""
    return gitops_changes.ScenarioCommits(target, argocd, gitops, undo, story)


# --- status and history ----------------------------------------------------------------------------


@given(parsers.parse('the Application "{app}" is Synced and Healthy'))
@touches(Touches.argocd)
def app_healthy(argocd: ArgoCDClient, target: Target, story: dict, app: str) -> None:
    story["app"] = app
    wait_synced_and_healthy(argocd, app, target.timeouts.rollout)


@then(parsers.parse(SYNCED_SELF_HEAL))
@touches(Touches.argocd)
def app_healthy_within(
    argocd: ArgoCDClient, execution: Execution, story: dict, app: str, seconds: int
) -> None:
    waited = wait_synced_and_healthy(argocd, app, seconds)
    execution.timing("application_healthy_seconds", waited.seconds, budget=seconds)


@then(
    parsers.parse(
        'the Application "{app}" is Synced to the head commit of gitops-repo\'s "{branch}" branch and Healthy'
    )
)
@touches(Touches.argocd, Touches.git)
def synced_to_head(
    argocd: ArgoCDClient, gitops: gitops_repo.Repo, target: Target, story: dict, app: str, branch: str
) -> None:
    story["app_status"] = gitops_checks.expect_synced_to_head(
        argocd, app, gitops.head(), target.timeouts.rollout
    )


@then(parsers.parse('every resource of the Application "{app}" is Synced'))
@touches(Touches.argocd)
def resources_synced(argocd: ArgoCDClient, app: str) -> None:
    gitops_checks.expect_resources_synced(argocd.application(app))


@then(
    parsers.parse(
        'the history of the Application "{app}" lists each deployed revision with its commit, time '
        "and source path"
    )
)
@touches(Touches.argocd)
def history(argocd: ArgoCDClient, app: str) -> None:
    application = argocd.application(app)
    gitops_checks.expect_history(application, application["spec"]["source"]["path"])


@then(parsers.parse('the Application "{app}" syncs path "{path}" of gitops-repo\'s "{branch}" branch'))
@touches(Touches.argocd)
def syncs_path(argocd: ArgoCDClient, story: dict, app: str, path: str, branch: str) -> None:
    story["app"] = app
    gitops_checks.expect_source(argocd.application(app), path, branch, "gitops-repo")


@then("its sync policy is automated with prune and selfHeal enabled")
@touches(Touches.argocd)
def automated(argocd: ArgoCDClient, story: dict) -> None:
    gitops_checks.expect_automated(argocd.application(story["app"]))


# --- self-heal -------------------------------------------------------------------------------------


@when(
    parsers.parse('every pod of Deployment "{deployment}" is force-deleted with a grace period of 0 seconds')
)
@touches(Touches.control_plane)
def force_delete(
    kube: Kube, argocd: ArgoCDClient, app_ns: str, undo: UndoStack, story: dict, deployment: str
) -> None:
    story["watch"] = drift.SyncWatch(argocd, story["app"]).start()
    undo.push("stop watching the Application", story["watch"].stop)
    story["deleted"] = drift.force_delete_pods(kube, app_ns, deployment)


@then(parsers.parse('Deployment "{deployment}" has all replicas available again within {seconds:d} seconds'))
@touches(Touches.control_plane, Touches.node_runtime)
def available_again(
    kube: Kube, app_ns: str, execution: Execution, story: dict, deployment: str, seconds: int
) -> None:
    took = drift.expect_pods_replaced(kube, app_ns, deployment, story["deleted"], seconds)
    execution.timing("self_heal_seconds", took, budget=seconds)


@then(parsers.parse('the Application "{app}" was never OutOfSync meanwhile'))
@touches(Touches.argocd)
def never_out_of_sync(story: dict, app: str) -> None:
    seen = story["watch"].stop()
    assert seen, "no sample of the Application's sync status was taken"
    assert "OutOfSync" not in seen, f"the Application went OutOfSync: {seen}"


# --- drift -----------------------------------------------------------------------------------------


@when(parsers.re(r"someone (?P<change>.+) by hand"))
@touches(Touches.control_plane)
def wrong_change(
    kube: Kube, argocd: ArgoCDClient, target: Target, app_ns: str, undo: UndoStack, story: dict, change: str
) -> None:
    drift.sync_afterwards(undo, argocd, gitops_changes.application(story), target.timeouts.rollout)
    story["drift"] = drift.make_drift(kube, app_ns, change)


@then(parsers.parse('Deployment "{deployment}" matches gitops-repo again within {seconds:d} seconds'))
@touches(Touches.argocd, Touches.control_plane)
def drift_undone(execution: Execution, story: dict, deployment: str, seconds: int) -> None:
    execution.timing("drift_recovery_seconds", drift.expect_undone(story["drift"], seconds), budget=seconds)


@then("the Application's last sync was started automatically after the change")
@touches(Touches.argocd)
def automated_after_change(argocd: ArgoCDClient, story: dict) -> None:
    gitops_checks.last_sync_automated_after(
        argocd, gitops_changes.application(story), story["drift"].at_epoch
    )


@given(parsers.parse('self-heal is switched off for the Application "{app}"'))
@touches(Touches.argocd)
def self_heal_off(argocd: ArgoCDClient, undo: UndoStack, story: dict, app: str) -> None:
    gitops_changes.switch_self_heal_off(argocd, undo, app)
    story["app"] = app


@when(parsers.parse('self-heal is switched on again for the Application "{app}"'))
@touches(Touches.argocd)
def self_heal_on(argocd: ArgoCDClient, app: str) -> None:
    argocd.set_self_heal(app, True)


@then(parsers.parse('the Application "{app}" is OutOfSync within {seconds:d} seconds'))
@touches(Touches.argocd)
def out_of_sync(argocd: ArgoCDClient, app: str, seconds: int) -> None:
    gitops_checks.expect_out_of_sync(argocd, app, seconds)


@then(parsers.parse('Deployment "{deployment}" still has {replicas:d} replicas after {seconds:d} seconds'))
@touches(Touches.control_plane)
def still_has(kube: Kube, app_ns: str, deployment: str, replicas: int, seconds: int) -> None:
    drift.expect_replicas_kept(kube, app_ns, deployment, replicas, seconds)


@then(
    parsers.re(
        r'Deployment "(?P<deployment>[^"]+)" is back to (?P<replicas>\d+) replicas? within '
        r"(?P<seconds>\d+) seconds"
    ),
    converters={"replicas": int, "seconds": int},
)
@touches(Touches.control_plane)
def back_to(kube: Kube, app_ns: str, deployment: str, replicas: int, seconds: int) -> None:
    drift.expect_replicas_back(kube, app_ns, deployment, replicas, seconds)


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
    line = gitops_checks.expect_webhook_refresh(
        target, kube, gitops_changes.application(story), story["pushed_at"]
    )
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


# --- validation ------------------------------------------------------------------------------------


@then(
    parsers.parse(
        'these Deployments in "{namespace}" have all replicas available and their Services have '
        "ready endpoints:"
    )
)
@touches(Touches.control_plane, Touches.node_runtime)
def all_deployed(kube: Kube, target: Target, namespace: str, datatable: list[list[str]]) -> None:
    gitops_checks.expect_all_deployed(kube, namespace, datatable[1:], target.timeouts.assertion)


@then("no Boutique pod is Pending or in CrashLoopBackOff")
@touches(Touches.node_runtime)
def no_bad_pods(kube: Kube, app_ns: str) -> None:
    gitops_checks.expect_no_bad_pods(kube, app_ns)


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


# --- the overlays as built -------------------------------------------------------------------------


@when(parsers.parse('kustomize builds "{overlay}" of gitops-repo'))
@touches(Touches.file_only)
def kustomize_build(story: dict, overlay: str) -> None:
    story["objects"] = manifests.build(overlay)


@then("every resource validates strictly against the schemas of the cluster's Kubernetes version")
@touches(Touches.file_only)
def schemas_valid(kube: Kube, story: dict) -> None:
    version = client.VersionApi(kube.api).get_code()
    manifests.expect_schemas_valid(story["objects"], f"{version.major}.{version.minor.rstrip('+')}")


@then(parsers.parse("it has a Deployment and a Service for each of the {count:d} Online Boutique services"))
@touches(Touches.file_only)
def each_service(story: dict, count: int) -> None:
    assert len(manifests.SERVICES) == count
    manifests.expect_each_service(story["objects"])


@then(parsers.parse('every namespaced resource is in the namespace "{namespace}"'))
@touches(Touches.file_only)
def in_namespace(story: dict, namespace: str) -> None:
    manifests.expect_namespace(story["objects"], namespace)


@then("every container runs as non-root, with a read-only root filesystem and CPU and memory limits")
@touches(Touches.file_only)
def hardened(story: dict) -> None:
    manifests.expect_hardened_containers(story["objects"])


@then("the service addresses and ports reach the containers from ConfigMaps")
@touches(Touches.file_only)
def addresses_from_configmaps(story: dict) -> None:
    manifests.expect_addresses_from_configmaps(story["objects"])


@then("no container sets a password, token or key as a literal env value")
@touches(Touches.file_only)
def no_literal_secrets(story: dict) -> None:
    manifests.expect_no_literal_secrets(story["objects"])


@then(parsers.parse('every Secret a Deployment refers to exists in the namespace "{namespace}"'))
@touches(Touches.control_plane)
def secrets_exist(kube: Kube, target: Target, story: dict, namespace: str) -> None:
    manifests.expect_referenced_secrets_exist(kube, story["objects"], namespace)
    site_for(target).expect_pull_secret(kube, namespace)


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
    took = rollout.expect_degraded_after_deadline(
        argocd, kube, app, app_ns, "frontend", story["committed_at"], seconds
    )
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


@then(parsers.parse('the Ingress "{ingress}" for host "{host}" has the ingress VIP as its address'))
@touches(Touches.control_plane, Touches.ingress)
def ingress_has_vip(kube: Kube, target: Target, app_ns: str, ingress: str, host: str) -> None:
    storefront.expect_ingress_has_vip(kube, target, app_ns, ingress, host)


@then(
    parsers.parse(
        '"{url}" answers through the VIP with HTTP {status:d} and the Online Boutique home page '
        "within {seconds:d} seconds"
    )
)
@touches(Touches.ingress)
def home_page(target: Target, execution: Execution, url: str, status: int, seconds: int) -> None:
    took = storefront.expect_answers(target, url, status, "Online Boutique", seconds)
    execution.timing("home_page_seconds", took, budget=seconds)


@then(
    parsers.re(r'"(?P<url>[^"]+)" answers through the VIP with HTTP (?P<status>\d+)$'),
    converters={"status": int},
)
@touches(Touches.ingress)
def answers_status(target: Target, url: str, status: int) -> None:
    storefront.expect_answers(target, url, status, "", target.timeouts.assertion)


@then(parsers.parse('"{url}" answers through the VIP with "{text}"'))
@touches(Touches.ingress)
def answers_text(target: Target, url: str, text: str) -> None:
    storefront.expect_answers(target, url, 200, text, target.timeouts.assertion)


@given(
    parsers.parse('a probe requests "{url}" through the ingress VIP {rate:d} times per second'),
    target_fixture="prober",
)
@touches(Touches.ingress)
def start_probe(target: Target, undo: UndoStack, url: str, rate: int) -> storefront.Prober:
    prober = storefront.Prober(target, url, rate).start()
    undo.push("stop the storefront probe", prober.stop)
    return prober


@then(parsers.parse("at least {percent:g}% of the probe requests during the rollout got HTTP 200"))
@touches(Touches.ingress)
def probe_share(prober: storefront.Prober, percent: float) -> None:
    storefront.expect_share_ok(prober.stop(), percent)
