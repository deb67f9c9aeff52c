"""Phase 3: MetalLB, ingress-nginx, Argo CD behind its Ingress, gitops-repo credentials."""

from __future__ import annotations

import pytest
from pytest_bdd import parsers, then, when

from boutique_suite import evidence, gitops_checks
from boutique_suite.kube import Kube
from boutique_suite.targets import Target

NO_METALLB = (
    "MetalLB's controller is not in the lab yet (issue #5 part 8): no LoadBalancer address is assigned"
)
NO_INGRESS_NGINX = "ingress-nginx cannot run in the lab (no containers, no data plane)"


@pytest.fixture
def repository() -> dict:
    return {}


@pytest.fixture
def argocd_ns(target: Target) -> str:
    return target.argocd.namespace if target.argocd else "argocd"


@then(parsers.parse('the IPAddressPool "{pool}" holds the address range the target file gives'))
def pool_range(request: pytest.FixtureRequest, target: Target, pool: str) -> None:
    evidence.skip_scenario(request, NO_METALLB if target.is_lab else evidence.ONPREM_PENDING)


@when("a test Service of type LoadBalancer is created")
def loadbalancer_service(request: pytest.FixtureRequest, target: Target) -> None:
    evidence.skip_scenario(request, NO_METALLB if target.is_lab else evidence.ONPREM_PENDING)


@then("the ingress-nginx controller has all replicas available")
def ingress_nginx_available(request: pytest.FixtureRequest, target: Target) -> None:
    evidence.skip_scenario(request, NO_INGRESS_NGINX if target.is_lab else evidence.ONPREM_PENDING)


@then("the Argo CD server, repo-server, application controller and redis are running")
def argocd_running(target: Target, kube: Kube) -> None:
    gitops_checks.expect_components_running(target, kube)


@then(parsers.parse('the Ingress "{ingress}" sends host "{host}" to the Service "{service}"'))
def ingress_routes(kube: Kube, argocd_ns: str, ingress: str, host: str, service: str) -> None:
    gitops_checks.expect_ingress_routes(kube, argocd_ns, ingress, host, service)


@then("the Argo CD API answers with its version and accepts the admin login from the target's secret")
def api_and_login(target: Target) -> None:
    gitops_checks.expect_api_and_login(target)


@then(parsers.parse('Argo CD has a repository Secret for "{repo}" labelled "{label}"'))
def repository_secret(kube: Kube, argocd_ns: str, repository: dict, repo: str, label: str) -> None:
    repository.update(gitops_checks.repository_secret(kube, argocd_ns, repo))


@then(parsers.parse('Argo CD reports its connection to "{repo}" as "{status}"'))
def repository_connection(target: Target, repository: dict, repo: str, status: str) -> None:
    repository.update(gitops_checks.expect_repository_connection(target, repository["url"], status))


@then("Argo CD verifies the Git server's certificate with the platform CA, without the insecure flag")
def repository_tls(kube: Kube, argocd_ns: str, repository: dict) -> None:
    gitops_checks.expect_verified_tls(kube, argocd_ns, repository)
