"""Phase 7 and HPA under load: Terraform, Sealed Secrets, Locust, the Boutique's HPAs."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest
from pytest_bdd import given, parsers, then, when

from boutique_suite.actions import latency, load, sealing
from boutique_suite.clients.alerting import Prometheus
from boutique_suite.clients.argocd import ArgoCDClient
from boutique_suite.clients.kube import Kube
from boutique_suite.expectations import autoscaling, manifests, terraform
from boutique_suite.reporting import bottleneck, evidence
from boutique_suite.reporting.evidence import Execution
from boutique_suite.run.targets import Target
from boutique_suite.run.touches import Touches, touches
from boutique_suite.run.undo import UndoStack
from provisioning import LayerRunner

HOLD_SYNCED_SECONDS = 20  # two of the lab's Argo CD reconciliations (10 s)


@pytest.fixture
def facts() -> dict:
    """What the phase-7 steps made and found: the SealedSecret, where and when it was applied, the HPAs."""
    return {}


def skip_unless(request: pytest.FixtureRequest, reason: str | None) -> None:
    if reason:
        evidence.skip_scenario(request, reason)


# --- Terraform -------------------------------------------------------------------------------------


@then('"terraform fmt -check" reports no change in any Terraform module')
@touches(Touches.file_only)
def terraform_fmt(request: pytest.FixtureRequest) -> None:
    skip_unless(request, terraform.unavailable())
    terraform.expect_formatted()


@then('"terraform validate" passes for every Terraform module')
@touches(Touches.file_only)
def terraform_validate(request: pytest.FixtureRequest) -> None:
    skip_unless(request, terraform.unavailable())
    terraform.expect_valid()


@then('"terraform plan -detailed-exitcode" reports no changes for every Terraform module')
@touches(Touches.hypervisor)
def terraform_plan(request: pytest.FixtureRequest) -> None:
    skip_unless(request, terraform.unavailable() or terraform.NO_ONPREM_STATE)


@then('"terraform plan" on an empty scratch libvirt lists exactly the node VMs, disks and network')
@touches(Touches.hypervisor)
def terraform_plan_scratch(request: pytest.FixtureRequest) -> None:
    skip_unless(request, terraform.unavailable() or terraform.libvirt_unavailable())
    evidence.attach_text("terraform plan", terraform.expect_plan_on_scratch_libvirt().output)


# --- Sealed Secrets --------------------------------------------------------------------------------


@then("the sealed-secrets controller is running")
@touches(Touches.control_plane)
def controller_running(target: Target, layers: LayerRunner, execution: Execution) -> None:
    sealing.expect_controller_running(target)
    if 7 in layers.seconds:
        execution.timing("layer7_ensure_seconds", layers.seconds[7])


@then("gitops-repo holds no Secret manifests, only SealedSecrets")
@touches(Touches.git)
def only_sealed(target: Target) -> None:
    evidence.attach_text(
        "SealedSecrets in gitops-repo", "\n".join(sealing.expect_only_sealed_secrets(target))
    )


@when(
    parsers.parse('a Secret holding the run id is sealed with kubeseal for "{namespace}" and applied there')
)
@touches(Touches.control_plane)
def seal_and_apply(
    kube: Kube, target: Target, run_id: str, undo: UndoStack, facts: dict, namespace: str
) -> None:
    facts["secret"] = sealing.seal_run_id_undoably(kube, target, namespace, run_id, undo)
    sealing.apply(kube, facts["secret"], namespace)
    facts["applied_at"] = time.monotonic()


@then(
    parsers.parse(
        'the controller creates that Secret in "{namespace}" with the same data within {seconds:d} seconds'
    )
)
@touches(Touches.control_plane)
def secret_opened(kube: Kube, execution: Execution, facts: dict, namespace: str, seconds: int) -> None:
    assert facts["secret"].namespace == namespace, f"sealed for {facts['secret'].namespace}, not {namespace}"
    sealing.expect_opened(kube, facts["secret"], seconds)
    execution.timing("unseal_seconds", time.monotonic() - facts["applied_at"], budget=seconds)


@when("the same SealedSecret is applied in another namespace")
@touches(Touches.control_plane)
def apply_elsewhere(kube: Kube, scenario_ns: str, facts: dict) -> None:
    sealing.apply(kube, facts["secret"], scenario_ns)  # scenario_ns and all in it go at the end
    facts["elsewhere"] = scenario_ns


@then("the controller refuses to unseal it there")
@touches(Touches.control_plane)
def refused(kube: Kube, target: Target, facts: dict) -> None:
    secret = facts["secret"]
    message = sealing.expect_refused(kube, facts["elsewhere"], secret.name, target.timeouts.assertion)
    evidence.attach_text("controller's refusal", message)


# --- Locust --------------------------------------------------------------------------------------


@pytest.fixture
def shoppers(kube: Kube, target: Target, app_ns: str, undo: UndoStack) -> Iterator[load.Shoppers]:
    """The scenario's Locust run; the load never outlives its scenario."""
    holder = load.Shoppers(kube, target, app_ns, undo)
    yield holder
    holder.stop()


@when(parsers.parse("Locust starts {users:d} users spawning {rate:d} per second against the storefront"))
@touches(Touches.load_balancer, Touches.data_plane)
def locust_starts(shoppers: load.Shoppers, users: int, rate: int) -> None:
    shoppers.start(users, rate)


@given(parsers.parse("Locust is running {users:d} users against the storefront"))
@touches(Touches.load_balancer, Touches.data_plane)
def locust_running(target: Target, shoppers: load.Shoppers, users: int) -> None:
    session = shoppers.start(users)
    load.expect_all_shopping(session, users, target.timeouts.assertion)


@when(parsers.parse("the load runs for {seconds:d} seconds"))
@touches(Touches.data_plane)
def load_runs(shoppers: load.Shoppers, seconds: int) -> None:
    shoppers.running.run_for(seconds)


@when("Locust stops")
@touches(Touches.data_plane, Touches.monitoring)
def locust_stops(shoppers: load.Shoppers, prometheus: Prometheus, app_ns: str) -> None:
    load.headroom(shoppers.running, prometheus, app_ns)


@then(parsers.parse("every shopper task runs at least once within {seconds:d} seconds: {tasks}"))
@touches(Touches.data_plane)
def tasks_run(shoppers: load.Shoppers, execution: Execution, seconds: int, tasks: str) -> None:
    took = load.expect_tasks_run_within(shoppers.running, [t.strip() for t in tasks.split(",")], seconds)
    execution.timing("journey_covered_seconds", took, budget=seconds)


@then("fewer than 1% of Locust's requests failed")
@touches(Touches.data_plane)
def few_failures(shoppers: load.Shoppers) -> None:
    load.expect_few_failures(shoppers.running.snapshot())


@then(parsers.parse("Locust sustains at least {rps:d} requests per second with fewer than 1% failures"))
@touches(Touches.data_plane)
def sustains(shoppers: load.Shoppers, rps: int) -> None:
    load.expect_sustained_rps(shoppers.running.snapshot(), rps)
    load.expect_few_failures(shoppers.running.snapshot())


@then(parsers.parse("fewer than 1% of Locust's requests fail in the {seconds:d} seconds after that"))
@touches(Touches.data_plane)
def few_failures_after(shoppers: load.Shoppers, seconds: int) -> None:
    load.expect_few_failures_for(shoppers.running, seconds)


@then(parsers.parse("Locust's requests succeed again within {seconds:d} seconds"))
@touches(Touches.data_plane)
def traffic_recovered(shoppers: load.Shoppers, execution: Execution, seconds: int) -> None:
    execution.timing(
        "traffic_recovered_seconds", load.expect_traffic_recovered(shoppers.running, seconds), budget=seconds
    )


@then(
    parsers.parse(
        'Prometheus shows ingress-nginx requests for "{host}" within {percent:d}% of Locust\'s request rate'
    )
)
@touches(Touches.ingress, Touches.monitoring, Touches.data_plane)
def ingress_saw_load(shoppers: load.Shoppers, prometheus: Prometheus, host: str, percent: int) -> None:
    load.expect_ingress_saw_the_load(prometheus, shoppers.running, host, percent / 100)


# --- headroom: what the load cost each service ----------------------------------------------------

SERVICES_MEASURED = (
    "the report lists, for each of the {count:d} Boutique services, CPU usage against its request and limit, "
    "CPU throttling and memory working set against its limit"
)
NAMES_BOTTLENECKS = (
    "the report names the service with the least CPU headroom, the one with the least memory headroom "
    "and the slowest route"
)


@then(parsers.parse(SERVICES_MEASURED))
@touches(Touches.monitoring, Touches.data_plane)
def services_measured(shoppers: load.Shoppers, prometheus: Prometheus, app_ns: str, count: int) -> None:
    assert count == len(manifests.SERVICES), f"the Boutique has {len(manifests.SERVICES)} services"
    measured = load.headroom(shoppers.running, prometheus, app_ns).measured
    bottleneck.expect_measured(measured, manifests.SERVICES)


@then("the report lists p50, p95 and p99 latency per storefront route as the shoppers measured it")
@touches(Touches.data_plane)
def route_latencies(shoppers: load.Shoppers) -> None:
    load.expect_route_latencies(shoppers.running.stop())


@then(NAMES_BOTTLENECKS)
@touches(Touches.monitoring, Touches.data_plane)
def names_bottlenecks(shoppers: load.Shoppers, prometheus: Prometheus, app_ns: str) -> None:
    report = load.headroom(shoppers.running, prometheus, app_ns)
    bottleneck.expect_named(report.measured, report.result.endpoints)


@then(parsers.parse("no Boutique container is CPU-throttled in more than {percent:d}% of its periods"))
@touches(Touches.monitoring, Touches.data_plane)
def throttled_at_most(shoppers: load.Shoppers, prometheus: Prometheus, app_ns: str, percent: int) -> None:
    report = load.headroom(shoppers.running, prometheus, app_ns)
    bottleneck.expect_at_most(report.measured, "CPU throttling", percent / 100)


@then(parsers.parse("no Boutique container uses more than {percent:d}% of its memory limit"))
@touches(Touches.monitoring, Touches.data_plane)
def memory_at_most(shoppers: load.Shoppers, prometheus: Prometheus, app_ns: str, percent: int) -> None:
    report = load.headroom(shoppers.running, prometheus, app_ns)
    bottleneck.expect_at_most(report.measured, "memory of limit", percent / 100)


@then(parsers.parse('p95 latency of "{route}" stays under the target\'s SLO'))
@touches(Touches.data_plane)
def p95_within_slo(shoppers: load.Shoppers, target: Target, route: str) -> None:
    load.expect_p95_below(shoppers.running.stop(), route, target.slo.storefront_p95_ms)


@then(parsers.parse("Locust's p95 stays under the target's SLO for the next {seconds:d} seconds"))
@touches(Touches.data_plane)
def p95_within_slo_for(shoppers: load.Shoppers, target: Target, execution: Execution, seconds: int) -> None:
    p95 = latency.expect_p95_within_slo_for(shoppers.running, target.slo.storefront_p95_ms, seconds)
    execution.timing("p95_after_scale_out_seconds", p95 / 1000)


@then(parsers.parse('p95 latency of "{route}" {way} {ms:d} ms within {seconds:d} seconds'))
@touches(Touches.data_plane)
def route_p95_crosses(
    shoppers: load.Shoppers, execution: Execution, route: str, way: str, ms: int, seconds: int
) -> None:
    took = latency.expect_route_p95_crossing(shoppers.running, route, way, ms, seconds)
    execution.timing(f"p95_{way.split()[0]}_seconds", took, budget=seconds)


@then(parsers.parse('the report names "{route}" as the slowest route'))
@touches(Touches.data_plane)
def slowest_route(shoppers: load.Shoppers, route: str) -> None:
    evidence.attach_json(
        "p95 per route over the last seconds (ms)", latency.expect_slowest_route(shoppers.running, route)
    )


# --- HPAs under load -------------------------------------------------------------------------------


@then(
    parsers.re(
        r'the HPA scales Deployment "(?P<deployment>[^"]+)" (?P<direction>out to at least|back in to) '
        r"(?P<replicas>\d+) replicas? within (?P<seconds>\d+) seconds"
    ),
    converters={"replicas": int, "seconds": int},
)
@touches(Touches.control_plane, Touches.node_runtime)
def hpa_scales(
    kube: Kube,
    app_ns: str,
    execution: Execution,
    shoppers: load.Shoppers,
    deployment: str,
    direction: str,
    replicas: int,
    seconds: int,
) -> None:
    out = direction.startswith("out")
    took = load.expect_hpa_scaled(kube, app_ns, shoppers.running, deployment, replicas, seconds, out)
    execution.timing(f"{deployment}_scale_{'out' if out else 'in'}_seconds", took, budget=seconds)


@then(
    parsers.parse(
        'every new replica of Deployment "{deployment}" is available '
        "within {seconds:d} seconds of being created"
    )
)
@touches(Touches.control_plane, Touches.node_runtime)
def new_replicas_ready(
    kube: Kube, app_ns: str, shoppers: load.Shoppers, deployment: str, seconds: int
) -> None:
    since = shoppers.running.run.started_at
    took = autoscaling.expect_new_replicas_ready(kube, app_ns, deployment, since, seconds)
    evidence.attach_json(f"new replicas of {deployment}: seconds to Ready", took)


@then(parsers.parse('Deployment "{deployment}" never has more than {most:d} replicas'))
@touches(Touches.control_plane)
def never_more(shoppers: load.Shoppers, deployment: str, most: int) -> None:
    autoscaling.expect_at_most(shoppers.running.watches[deployment], most)


@then(
    parsers.parse(
        'Deployment "{deployment}" still has exactly {replicas:d} replicas after {seconds:d} seconds'
    )
)
@touches(Touches.control_plane)
def still_exactly(kube: Kube, app_ns: str, deployment: str, replicas: int, seconds: int) -> None:
    autoscaling.expect_replicas_hold(kube, app_ns, deployment, replicas, seconds)


@then(
    parsers.parse(
        'the HPA of Deployment "{deployment}" reports ScalingLimited because it reached its maximum'
    )
)
@touches(Touches.control_plane)
def scaling_limited(kube: Kube, target: Target, app_ns: str, deployment: str) -> None:
    autoscaling.expect_scaling_limited(kube, app_ns, deployment, target.timeouts.assertion)


# --- HPAs ------------------------------------------------------------------------------------------


@then(parsers.parse('these HorizontalPodAutoscalers exist in "{namespace}":'))
@touches(Touches.control_plane)
def hpas_exist(kube: Kube, facts: dict, namespace: str, datatable: list[list[str]]) -> None:
    facts["hpa_namespace"] = namespace
    facts["hpas"] = autoscaling.expect_hpas(kube, namespace, datatable[1:])


@then(
    parsers.parse(
        "each of them reports ScalingActive with its current CPU utilisation within {seconds:d} seconds"
    )
)
@touches(Touches.control_plane, Touches.node_runtime)
def hpas_active(kube: Kube, target: Target, execution: Execution, facts: dict, seconds: int) -> None:
    waited = autoscaling.expect_scaling_active(kube, facts["hpa_namespace"], facts["hpas"], seconds)
    evidence.attach_json("HPA status", waited.check.value)
    execution.timing("hpa_scaling_active_seconds", waited.seconds, budget=seconds)


@then("Argo CD ignores the replicas of those Deployments, so it does not fight the HPAs")
@touches(Touches.argocd, Touches.control_plane)
def replicas_ignored(kube: Kube, argocd: ArgoCDClient, undo: UndoStack, story: dict, facts: dict) -> None:
    app, namespace, hpas = story["app"], facts["hpa_namespace"], facts["hpas"]
    autoscaling.expect_hpas_own_replicas(kube, argocd, app, namespace, hpas, HOLD_SYNCED_SECONDS, undo)


@given(parsers.re(r'the HPA of Deployment "(?P<deployment>[^"]+)" holds (?P<replicas>\d+) replicas?'))
@touches(Touches.control_plane)
def hpa_holds(kube: Kube, target: Target, app_ns: str, deployment: str, replicas: str) -> None:
    autoscaling.wait_hpa_holds(kube, app_ns, deployment, int(replicas), target.timeouts.rollout)
