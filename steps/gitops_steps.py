"""Phase 4 and the GitOps themes: sync, history, self-heal, drift recovery, the overlays as built."""

from __future__ import annotations

import pytest
from kubernetes import client
from pytest_bdd import given, parsers, then, when

from boutique_suite.actions import drift, gitops_changes
from boutique_suite.clients import gitops_repo
from boutique_suite.clients.argocd import ArgoCDClient, wait_synced_and_healthy
from boutique_suite.clients.kube import Kube
from boutique_suite.context import sites
from boutique_suite.context.sites import site_for
from boutique_suite.expectations import gitops_checks, manifests, network_flows, storefront
from boutique_suite.reporting import evidence
from boutique_suite.reporting.evidence import Execution
from boutique_suite.run.targets import Target
from boutique_suite.run.touches import Touches, touches
from boutique_suite.run.undo import UndoStack

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
        return sites.gitops_repo(target)
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


# --- the NetworkPolicies, as the overlay builds them -----------------------------------------------------


@when(parsers.parse('the NetworkPolicies of "{overlay}" are read for the namespace "{namespace}"'))
@touches(Touches.file_only)
def policies_read(story: dict, overlay: str, namespace: str) -> None:
    story["policies"], story["policy_ns"] = network_flows.overlay_policies(overlay, namespace), namespace


@then("they allow every call the Online Boutique makes, and every service's DNS lookups")
@touches(Touches.file_only)
def flows_allowed(story: dict) -> None:
    flows = network_flows.needed(story["policy_ns"])
    network_flows.expect_flows(story["policies"], flows, True, "flows the Boutique needs")


@then("they refuse a pod of another namespace calling redis-cart, and the load generator calling a backend")
@touches(Touches.file_only)
def flows_refused(story: dict) -> None:
    flows = network_flows.forbidden(story["policy_ns"])
    network_flows.expect_flows(story["policies"], flows, False, "flows the policies keep out")
