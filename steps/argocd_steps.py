"""Phase 3: MetalLB, ingress-nginx, Argo CD behind its Ingress, gitops-repo credentials."""

from __future__ import annotations

import pytest
from pytest_bdd import parsers, then, when

from boutique_suite.clients.kube import Kube
from boutique_suite.context.sites import site_for
from boutique_suite.expectations import gateway, gitops_checks
from boutique_suite.reporting import evidence
from boutique_suite.reporting.evidence import Execution
from boutique_suite.run.targets import Target
from boutique_suite.run.touches import Touches, touches
from boutique_suite.run.undo import UndoStack


@pytest.fixture
def repository() -> dict:
    return {}


@pytest.fixture
def loadbalancer() -> dict:
    """What the gateway steps found: the Service's address, when it was created."""
    return {}


@pytest.fixture
def argocd_ns(target: Target) -> str:
    return target.argocd_namespace


# --- MetalLB and ingress-nginx's VIP --------------------------------------------------------------


@then(parsers.parse('the IPAddressPool "{pool}" holds the address range the target file gives'))
@touches(Touches.control_plane)
def pool_range(request: pytest.FixtureRequest, kube: Kube, target: Target, pool: str) -> None:
    if missing := site_for(target).metallb_missing():
        evidence.skip_scenario(request, missing)
    gateway.expect_pool_matches_target(kube, target, pool)


@then(parsers.parse('an L2Advertisement announces "{pool}"'))
@touches(Touches.control_plane, Touches.load_balancer)
def pool_advertised(kube: Kube, pool: str) -> None:
    gateway.expect_advertised(kube, pool)


@when("a LoadBalancer Service for the frontend is created")
@touches(Touches.control_plane)
def frontend_loadbalancer(
    kube: Kube, target: Target, app_ns: str, undo: UndoStack, loadbalancer: dict
) -> None:
    loadbalancer.update(gateway.create_frontend_loadbalancer(kube, target, app_ns, undo))


@then(parsers.parse("the storefront answers at that Service's external IP within {seconds:d} seconds"))
@touches(Touches.load_balancer, Touches.data_plane)
def storefront_at_loadbalancer(
    kube: Kube, target: Target, execution: Execution, loadbalancer: dict, seconds: int
) -> None:
    took = gateway.expect_storefront_behind(kube, target, loadbalancer, seconds)
    execution.timing("loadbalancer_storefront_seconds", took, budget=seconds)


@when("a test Service of type LoadBalancer is created")
@touches(Touches.control_plane)
def loadbalancer_service(kube: Kube, target: Target, scenario_ns: str, loadbalancer: dict) -> None:
    pool = gateway.gateway_of(target).pool
    loadbalancer.update(namespace=scenario_ns, created=gateway.create_test_service(kube, scenario_ns, pool))


@then(parsers.parse('it gets an external IP from "{pool}" within {seconds:d} seconds'))
@touches(Touches.control_plane)
def gets_address(
    kube: Kube, target: Target, execution: Execution, loadbalancer: dict, pool: str, seconds: int
) -> None:
    took = gateway.expect_test_service_address(kube, target, loadbalancer, pool, seconds)
    execution.timing("loadbalancer_address_seconds", took, budget=seconds)


@then("the ingress-nginx controller has all replicas available")
@touches(Touches.control_plane, Touches.node_runtime)
def ingress_nginx_available(request: pytest.FixtureRequest, kube: Kube, target: Target) -> None:
    if missing := site_for(target).metallb_missing() or site_for(target).ingress_controller_missing():
        evidence.skip_scenario(request, missing)
    gateway.expect_ingress_controller_available(kube, target)


@then(parsers.parse('the Service "{service}" has an external IP from "{pool}"'))
@touches(Touches.control_plane)
def service_address(kube: Kube, target: Target, loadbalancer: dict, service: str, pool: str) -> None:
    loadbalancer["ip"] = gateway.ingress_address(kube, target, service, pool)


@then("that IP is the ingress VIP the target file expects")
@touches(Touches.control_plane)
def ingress_vip(target: Target, loadbalancer: dict) -> None:
    gateway.expect_ingress_vip(target, loadbalancer["ip"])


@then("the Argo CD server, repo-server, application controller and redis are running")
@touches(Touches.argocd)
def argocd_running(target: Target, kube: Kube) -> None:
    gitops_checks.expect_components_running(target, kube)


@then(parsers.parse('the Ingress "{ingress}" sends host "{host}" to the Service "{service}"'))
@touches(Touches.control_plane, Touches.ingress)
def ingress_routes(kube: Kube, argocd_ns: str, ingress: str, host: str, service: str) -> None:
    gitops_checks.expect_ingress_routes(kube, argocd_ns, ingress, host, service)


@then("the Argo CD API answers with its version and accepts the admin login from the target's secret")
@touches(Touches.argocd)
def api_and_login(target: Target) -> None:
    gitops_checks.expect_api_and_login(target)


@then(parsers.parse('Argo CD has a repository Secret for "{repo}" labelled "{label}"'))
@touches(Touches.control_plane, Touches.argocd)
def repository_secret(kube: Kube, argocd_ns: str, repository: dict, repo: str, label: str) -> None:
    repository.update(gitops_checks.repository_secret(kube, argocd_ns, repo))


@then(parsers.parse('Argo CD reports its connection to "{repo}" as "{status}"'))
@touches(Touches.argocd, Touches.git)
def repository_connection(target: Target, repository: dict, repo: str, status: str) -> None:
    repository.update(gitops_checks.expect_repository_connection(target, repository["url"], status))


@then("Argo CD verifies the Git server's certificate with the platform CA, without the insecure flag")
@touches(Touches.argocd, Touches.git)
def repository_tls(kube: Kube, argocd_ns: str, repository: dict) -> None:
    gitops_checks.expect_verified_tls(kube, argocd_ns, repository)
