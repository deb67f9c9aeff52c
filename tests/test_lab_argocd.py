"""Bad input reaches the user as Argo CD's own message, fast: an unreachable repository, wrong repository
credentials, an invalid manifest committed. Each wait must fail long before its timeout."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest

from boutique_suite.clients.argocd import ArgoCDClient, synced_and_healthy
from boutique_suite.context.sites import gitops_repo
from boutique_suite.expectations import gitops_checks
from boutique_suite.run import targets, waits
from provisioning import LayerRunner
from provisioning.lab import kubectl
from provisioning.lab.services import argocd as lab_argocd

pytestmark = pytest.mark.lab
TIMEOUT = 120
INVALID = """apiVersion: apps/v1
kind: Deployment
metadata:
  name: suite-invalid
spec:
  replicas: 1
  template:
    metadata:
      labels: {app: suite-invalid}
    spec:
      containers: [{name: app, image: registry.local/boutique/suite-probe:v1}]
"""


@pytest.fixture(scope="module")
def client() -> ArgoCDClient:
    target = targets.load("lab")
    LayerRunner(target).require(3)
    return gitops_checks.argocd_client(target)


@pytest.fixture
def application(client: ArgoCDClient) -> Iterator:  # type: ignore[type-arg]
    made: list[str] = []

    def make(name: str, repo_url: str, path: str = "overlays/dev") -> str:
        kubectl.apply_objects(
            [
                {
                    "apiVersion": "argoproj.io/v1alpha1",
                    "kind": "Application",
                    "metadata": {
                        "name": name,
                        "namespace": lab_argocd.NS,
                        "labels": {"app.kubernetes.io/managed-by": "boutique-suite"},
                    },
                    "spec": {
                        "project": "default",
                        "source": {"repoURL": repo_url, "targetRevision": "main", "path": path},
                        "destination": {
                            "server": "https://kubernetes.default.svc",
                            "namespace": "suite-bad-input",
                        },
                        "syncPolicy": {"automated": {}, "syncOptions": ["CreateNamespace=true"]},
                    },
                }
            ]
        )
        made.append(name)
        return name

    yield make
    for name in made:
        kubectl.run("delete", "application", name, "-n", lab_argocd.NS, "--ignore-not-found", "--wait=false")
    kubectl.run("delete", "namespace", "suite-bad-input", "--ignore-not-found", "--wait=false")


def fails_fast(client: ArgoCDClient, app: str) -> str:
    started = time.monotonic()
    with pytest.raises(waits.WaitFailed) as err:
        waits.until(synced_and_healthy(client, app), timeout=TIMEOUT, interval=1, what=f"Application {app}")
    assert time.monotonic() - started < TIMEOUT / 2, "the failure was not detected early"
    return str(err.value)


def test_unreachable_repository(client: ArgoCDClient, application) -> None:  # type: ignore[no-untyped-def]
    app = application("suite-unreachable", "https://127.0.0.1:1/gitops-repo.git")
    message = fails_fast(client, app)
    assert "ComparisonError" in message and "connection refused" in message, message


def test_wrong_repository_credentials(client: ArgoCDClient, application) -> None:  # type: ignore[no-untyped-def]
    git = lab_argocd.gitserver.running()
    assert git is not None
    url = lab_argocd.repo_url_for_argocd(git, "app-repo")
    kubectl.apply_objects(
        [
            {
                "apiVersion": "v1",
                "kind": "Secret",
                "type": "Opaque",
                "metadata": {
                    "name": "suite-wrong-credentials",
                    "namespace": lab_argocd.NS,
                    "labels": {"argocd.argoproj.io/secret-type": "repository"},
                },
                "stringData": {
                    "type": "git",
                    "url": url,
                    "username": git.username,
                    "password": "not-the-token",
                },
            }
        ]
    )
    try:
        app = application("suite-wrong-credentials", url)
        message = fails_fast(client, app)
        assert "ComparisonError" in message and "authentication" in message.lower(), message
        assert "not-the-token" not in message
    finally:
        kubectl.run("delete", "secret", "suite-wrong-credentials", "-n", lab_argocd.NS, "--ignore-not-found")


def test_invalid_manifest_committed(client: ArgoCDClient, application) -> None:  # type: ignore[no-untyped-def]
    repo = gitops_repo(targets.load("lab"))
    repo.commit({"suite-invalid/deployment.yaml": lambda _: INVALID}, "an invalid Deployment (no selector)")
    try:
        git = lab_argocd.gitserver.running()
        assert git is not None
        app = application("suite-invalid-manifest", lab_argocd.gitops_repo_url(git), path="suite-invalid")
        message = fails_fast(client, app)
        assert "selector" in message, message
    finally:
        repo.restore()
