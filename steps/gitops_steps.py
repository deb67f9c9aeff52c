"""Phase 4 and the GitOps validation themes: sync, history, self-heal, drift recovery, rolling update."""

from __future__ import annotations

import time

import pytest
from kubernetes import client
from pytest_bdd import given, parsers, then, when

from boutique_suite import (
    cicd,
    drift,
    evidence,
    gitops_checks,
    gitops_repo,
    images,
    manifests,
    probes,
    rollout,
    storefront,
    waits,
)
from boutique_suite.argocd import ArgoCDClient, wait_synced_and_healthy
from boutique_suite.evidence import Execution
from boutique_suite.kube import Kube
from boutique_suite.targets import Target
from boutique_suite.touches import Touches, touches
from boutique_suite.undo import UndoStack

SYNCED_SELF_HEAL = 'the Application "{app}" is Synced and Healthy within {seconds:d} seconds'


@pytest.fixture
def argocd(request: pytest.FixtureRequest, target: Target, story: dict) -> ArgoCDClient:
    client = gitops_checks.argocd_client(target)
    yield client
    evidence.attach_application(client, story.get("app", cicd.APPLICATION))  # pass or fail: the evidence


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
def story() -> dict:
    """What earlier steps of the scenario did (the Application, the drift, the commit, watches)."""
    return {}


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
    story["watch"] = drift.SyncWatch(argocd, story.setdefault("app", cicd.APPLICATION)).start()
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
    app = story.get("app", cicd.APPLICATION)
    undo.push(
        f"sync {app} from gitops-repo",
        lambda: (argocd.sync(app), wait_synced_and_healthy(argocd, app, target.timeouts.rollout)),
        journal=("sync", {"app": app}),
    )
    story["drift"] = drift.make_drift(kube, app_ns, change)


@then(parsers.parse('Deployment "{deployment}" matches gitops-repo again within {seconds:d} seconds'))
@touches(Touches.argocd, Touches.control_plane)
def drift_undone(execution: Execution, story: dict, deployment: str, seconds: int) -> None:
    execution.timing("drift_recovery_seconds", drift.expect_undone(story["drift"], seconds), budget=seconds)


@then("the Application's last sync was started automatically after the change")
@touches(Touches.argocd)
def automated_after_change(argocd: ArgoCDClient, story: dict) -> None:
    gitops_checks.last_sync_automated_after(
        argocd, story.get("app", cicd.APPLICATION), story["drift"].at_epoch
    )


@given(parsers.parse('self-heal is switched off for the Application "{app}"'))
@touches(Touches.argocd)
def self_heal_off(argocd: ArgoCDClient, undo: UndoStack, story: dict, app: str) -> None:
    undo.push(
        f"switch self-heal on again for {app}",
        lambda: argocd.set_self_heal(app, True),
        journal=("self_heal_on", {"app": app}),
    )
    argocd.set_self_heal(app, False)
    story["app"] = app


@when(parsers.parse('self-heal is switched on again for the Application "{app}"'))
@touches(Touches.argocd)
def self_heal_on(argocd: ArgoCDClient, app: str) -> None:
    argocd.set_self_heal(app, True)


@then(parsers.parse('the Application "{app}" is OutOfSync within {seconds:d} seconds'))
@touches(Touches.argocd)
def out_of_sync(argocd: ArgoCDClient, app: str, seconds: int) -> None:
    def probe() -> waits.Check:
        status = argocd.refresh(app)["status"]["sync"]["status"]
        return waits.succeeded(status) if status == "OutOfSync" else waits.pending(status)

    waits.until(probe, timeout=seconds, interval=2, what=f"Application {app} OutOfSync")


@then(parsers.parse('Deployment "{deployment}" still has {replicas:d} replicas after {seconds:d} seconds'))
@touches(Touches.control_plane)
def still_has(kube: Kube, app_ns: str, deployment: str, replicas: int, seconds: int) -> None:
    def probe() -> waits.Check:
        have = kube.deployment(app_ns, deployment).spec.replicas
        return waits.succeeded(f"{have}") if have == replicas else waits.failed(f"{deployment} has {have}")

    waits.consistently(probe, duration=seconds, interval=2, what=f"{deployment} keeps {replicas} replicas")


@then(
    parsers.re(
        r'Deployment "(?P<deployment>[^"]+)" is back to (?P<replicas>\d+) replicas? within '
        r"(?P<seconds>\d+) seconds"
    ),
    converters={"replicas": int, "seconds": int},
)
@touches(Touches.control_plane)
def back_to(kube: Kube, app_ns: str, deployment: str, replicas: int, seconds: int) -> None:
    def probe() -> waits.Check:
        have = kube.deployment(app_ns, deployment).spec.replicas
        return waits.succeeded() if have == replicas else waits.pending(f"{deployment} has {have} replicas")

    waits.until(probe, timeout=seconds, interval=1, what=f"{deployment} back to {replicas}")


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
    argocd: ArgoCDClient,
    gitops: gitops_repo.Repo,
    target: Target,
    app_ns: str,
    run_id: str,
    undo: UndoStack,
    execution: Execution,
    story: dict,
    deployment: str,
) -> None:
    images.ensure_pullable(target, f"registry.local/boutique/{deployment}:rollout-{run_id}")
    app = story.get("app", cicd.APPLICATION)
    undo.push(
        "restore gitops-repo",
        lambda: cicd.restore_gitops(target, argocd, app),
        journal=("restore_gitops", {"app": app}),
    )
    story["watch"] = drift.AvailabilityWatch(kube, app_ns, deployment).start()
    undo.push("stop watching availability", story["watch"].stop)
    edit = gitops_repo.set_image_tag(f"registry.local/boutique/{deployment}", f"rollout-{run_id}")
    story["commit"] = gitops.commit(
        {"overlays/dev/kustomization.yaml": edit}, f"{deployment}: rollout-{run_id}"
    )
    story["committed_at"] = time.monotonic()


@when(
    parsers.parse(
        'a commit to gitops-repo adds the annotation "{key}" with the run id to the frontend\'s ConfigMap'
    )
)
@touches(Touches.git)
def commit_annotation(
    argocd: ArgoCDClient,
    gitops: gitops_repo.Repo,
    target: Target,
    run_id: str,
    undo: UndoStack,
    story: dict,
    key: str,
) -> None:
    app = story.get("app", cicd.APPLICATION)
    undo.push(
        "restore gitops-repo",
        lambda: cicd.restore_gitops(target, argocd, app),
        journal=("restore_gitops", {"app": app}),
    )
    edit = gitops_repo.annotate_configmap("frontend-config", key, run_id)
    story["commit"] = gitops.commit({"base/frontend.yaml": edit}, f"frontend-config: {key}={run_id}")
    story["annotation"] = (key, run_id)


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
    took = gitops_checks.expect_sync_of(
        argocd, story.get("app", cicd.APPLICATION), story["commit"], seconds, automated=True
    )
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
    waited = waits.until(
        probes.rollout_complete(kube, app_ns, deployment),
        timeout=seconds,
        interval=1,
        what=f"rollout of {deployment}",
        wake=kube.watch_deployments(app_ns, seconds + 1),
    )
    dep = waited.check.value
    selector = ",".join(f"{k}={v}" for k, v in (dep.spec.selector.match_labels or {}).items())  # type: ignore[union-attr]
    old = [
        rs.metadata.name
        for rs in kube.replica_sets(app_ns, selector)
        if (rs.status.replicas or 0) > 0
        and rs.metadata.annotations.get(probes.REVISION) != dep.metadata.annotations.get(probes.REVISION)
    ]  # type: ignore[union-attr]
    assert not old, f"old ReplicaSets still have pods: {old}"
    execution.timing("rollout_seconds", waited.seconds, budget=seconds)


@then(
    parsers.parse(
        'the available replicas of Deployment "{deployment}" never dropped below the desired count '
        "during the rollout"
    )
)
@touches(Touches.control_plane, Touches.node_runtime)
def never_dropped(story: dict, deployment: str) -> None:
    samples = story["watch"].stop()
    assert samples, "no availability sample was recorded during the rollout"
    drops = [(available, desired) for available, desired in samples if available < desired]
    assert not drops, f"available replicas dropped below desired: {drops}"


# --- validation ------------------------------------------------------------------------------------


@then(
    parsers.parse(
        'these Deployments in "{namespace}" have all replicas available and their Services have '
        "ready endpoints:"
    )
)
@touches(Touches.control_plane, Touches.node_runtime)
def all_deployed(kube: Kube, target: Target, namespace: str, datatable: list[list[str]]) -> None:
    for deployment, port in datatable[1:]:
        waits.until(
            probes.rollout_complete(kube, namespace, deployment),
            timeout=target.timeouts.assertion,
            what=f"Deployment {deployment}",
        )
        gitops_checks.expect_ready_endpoints(kube, namespace, deployment, int(port))


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
    argocd: ArgoCDClient,
    gitops: gitops_repo.Repo,
    target: Target,
    app_ns: str,
    run_id: str,
    undo: UndoStack,
    execution: Execution,
    story: dict,
    deployment: str,
) -> None:
    story.setdefault("app", cicd.APPLICATION)
    story["previous_image"] = kube.deployment(app_ns, deployment).spec.template.spec.containers[0].image
    commit_new_tag(kube, argocd, gitops, target, app_ns, run_id, undo, execution, story, deployment)
    gitops_checks.expect_sync_of(
        argocd, story["app"], story["commit"], target.timeouts.rollout, automated=True
    )
    wait_synced_and_healthy(argocd, story["app"], target.timeouts.rollout, revision=story["commit"])


@when(parsers.parse('auto-sync of the Application "{app}" is suspended'))
@touches(Touches.argocd)
def suspend_auto_sync(argocd: ArgoCDClient, undo: UndoStack, story: dict, app: str) -> None:
    saved = argocd.application(app)["spec"]["syncPolicy"]["automated"]
    undo.push(
        f"restore auto-sync of {app}",
        lambda: argocd.set_automated(app, saved),
        journal=("auto_sync", {"app": app, "automated": saved}),
    )
    story["automated"] = saved
    argocd.set_automated(app, None)


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
    rollout = probes.rollout_complete(kube, app_ns, deployment)

    def probe() -> waits.Check:
        image = kube.deployment(app_ns, deployment).spec.template.spec.containers[0].image
        if image != story["previous_image"]:
            return waits.pending(f"{deployment} runs {image}")
        return rollout()

    execution.timing(
        "rollback_seconds",
        waits.until(
            probe, timeout=seconds, interval=1, what=f"{deployment} back on its previous image"
        ).seconds,
        budget=seconds,
    )


@then(
    parsers.parse(
        'the Application "{app}" stays OutOfSync with gitops-repo for {seconds:d} seconds while '
        "auto-sync is suspended"
    )
)
@touches(Touches.argocd)
def stays_out_of_sync(argocd: ArgoCDClient, app: str, seconds: int) -> None:
    def probe() -> waits.Check:
        status = argocd.refresh(app)["status"]["sync"]["status"]
        return waits.succeeded(status) if status == "OutOfSync" else waits.failed(f"{app} is {status}")

    waits.until(probe, timeout=30, interval=2, what=f"{app} OutOfSync after the rollback")
    waits.consistently(probe, duration=seconds, interval=2, what=f"{app} stays OutOfSync")


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
    if target.is_lab:
        manifests.expect_lab_pull_secret(kube, namespace)


# --- a tag that cannot be pulled ---------------------------------------------------------------------


@when(parsers.parse('a commit to gitops-repo changes the image tag of Deployment "{deployment}" to "{tag}"'))
@touches(Touches.git)
def commit_unpullable_tag(
    kube: Kube,
    argocd: ArgoCDClient,
    gitops: gitops_repo.Repo,
    target: Target,
    app_ns: str,
    undo: UndoStack,
    execution: Execution,
    story: dict,
    deployment: str,
    tag: str,
) -> None:
    app = story.get("app", cicd.APPLICATION)
    story["previous_image"] = kube.deployment(app_ns, deployment).spec.template.spec.containers[0].image
    story["bad_image"] = f"registry.local/boutique/{deployment}:{tag}"
    undo.push(
        "restore gitops-repo",
        lambda: cicd.restore_gitops(target, argocd, app),
        journal=("restore_gitops", {"app": app}),
    )
    edit = gitops_repo.set_image_tag(f"registry.local/boutique/{deployment}", tag)
    story["commit"] = gitops.commit({"overlays/dev/kustomization.yaml": edit}, f"{deployment}: {tag}")
    story["committed_at"] = time.monotonic()


@when(parsers.parse('a commit to gitops-repo sets {name} to "{value}" for Deployment "{deployment}"'))
@touches(Touches.git)
def commit_env(
    argocd: ArgoCDClient,
    gitops: gitops_repo.Repo,
    target: Target,
    undo: UndoStack,
    story: dict,
    name: str,
    value: str,
    deployment: str,
) -> None:
    app = story.get("app", cicd.APPLICATION)
    undo.push(
        "restore gitops-repo",
        lambda: cicd.restore_gitops(target, argocd, app),
        journal=("restore_gitops", {"app": app}),
    )
    edit = gitops_repo.set_env(deployment, name, value)
    story["commit"] = gitops.commit(
        {"overlays/dev/kustomization.yaml": edit}, f"{deployment}: {name}={value}"
    )
    argocd.refresh(app)


@then(
    parsers.parse(
        'a new pod of Deployment "{deployment}" reports ImagePullBackOff within {seconds:d} seconds'
    )
)
@touches(Touches.node_runtime)
def pull_backoff(
    kube: Kube, app_ns: str, execution: Execution, story: dict, deployment: str, seconds: int
) -> None:
    probe = rollout.pod_cannot_pull(kube, app_ns, deployment, story["bad_image"])
    waits.until(probe, timeout=seconds, interval=1, what=f"a {deployment} pod in ImagePullBackOff")
    execution.timing(
        "commit_to_image_pull_backoff_seconds", time.monotonic() - story["committed_at"], budget=seconds
    )


@then(parsers.parse('the old pods of Deployment "{deployment}" stay available'))
@touches(Touches.control_plane, Touches.node_runtime)
def old_pods_stay(kube: Kube, app_ns: str, story: dict, deployment: str) -> None:
    waits.consistently(
        lambda: rollout.old_pods_available(kube, app_ns, deployment, story["bad_image"]),
        duration=10,
        interval=2,
        what=f"old pods of {deployment} available",
    )


@then(
    parsers.parse(
        'the Application "{app}" is Degraded within {seconds:d} seconds, once the frontend\'s progress '
        "deadline of {deadline:d} seconds has passed"
    )
)
@touches(Touches.argocd)
def app_degraded(
    argocd: ArgoCDClient,
    kube: Kube,
    app_ns: str,
    execution: Execution,
    story: dict,
    app: str,
    seconds: int,
    deadline: int,
) -> None:
    probe = rollout.degraded(argocd, kube, app, app_ns, "frontend")
    waits.until(probe, timeout=seconds, interval=3, what=f"{app} Degraded")
    execution.timing("commit_to_degraded_seconds", time.monotonic() - story["committed_at"], budget=seconds)


@when("that commit is reverted in gitops-repo")
@touches(Touches.git)
def revert_commit(gitops: gitops_repo.Repo, argocd: ArgoCDClient, story: dict) -> None:
    story["commit"] = gitops.restore()
    story["reverted_at"] = time.monotonic()
    argocd.refresh(story.get("app", cicd.APPLICATION))


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
    previous_image(kube, app_ns, execution, story, deployment, seconds)
    app = story.get("app", cicd.APPLICATION)
    waits.until(rollout.health_recovered(argocd, app), timeout=60, interval=2, what=f"{app} Healthy again")
    execution.timing("revert_to_rolled_back_seconds", time.monotonic() - story["reverted_at"], budget=seconds)


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
    execution.timing(
        "home_page_seconds",
        storefront.expect_answers(target, url, status, "Online Boutique", seconds),
        budget=seconds,
    )


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
