"""Phase 1: GitLab, the registry and its CA, app-repo / gitops-repo."""

from __future__ import annotations

import pytest
from pytest_bdd import parsers, then, when

from boutique_suite import evidence
from boutique_suite.targets import Target
from boutique_suite.touches import Touches, touches

NO_REGISTRY = "the lab has no OCI registry yet (issue #7): nothing to push to or to present a certificate"
NO_APP_REPO = "app-repo's content (service sources, Dockerfiles, .gitlab-ci.yml) comes with issue #7"


@when(parsers.parse('a small test image is pushed to "{image}" tagged with the run id'))
@touches(Touches.registry)
def push_image(request: pytest.FixtureRequest, target: Target, image: str) -> None:
    evidence.skip_scenario(request, NO_REGISTRY if target.is_lab else evidence.ONPREM_PENDING)


@then(parsers.parse('"{host}" presents a certificate issued by the registry CA the target file names'))
@touches(Touches.registry)
def registry_certificate(request: pytest.FixtureRequest, target: Target, host: str) -> None:
    evidence.skip_scenario(request, NO_REGISTRY if target.is_lab else evidence.ONPREM_PENDING)


@then(
    parsers.parse(
        '"app-repo" holds each service\'s source, its Dockerfile and a .gitlab-ci.yml, and no '
        "Kubernetes manifests"
    )
)
@touches(Touches.git)
def app_repo_content(request: pytest.FixtureRequest, target: Target) -> None:
    evidence.skip_scenario(request, NO_APP_REPO if target.is_lab else evidence.ONPREM_PENDING)
