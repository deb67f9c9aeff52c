"""The on-prem Argo CD bootstrap (phase 3), tried against the lab's real kube-apiserver: the pinned install
manifest from Argo CD's Go module passes a server-side dry run, and the applies that really run here (in a
scratch namespace the lab's Argo CD does not watch) change nothing the second time."""

from __future__ import annotations

import copy
from collections.abc import Iterator
from pathlib import Path

import pytest

from boutique_suite.clients.kube import Kube, connect_to
from boutique_suite.run import runlabel, target_access, targets
from provisioning import argocd_bootstrap as bootstrap
from provisioning.lab import manager, recipes
from tests.test_gitlab_platform import TOKEN as FAKE_GITLAB_TOKEN
from tests.test_gitlab_platform import FakeGitLab, serve

pytestmark = pytest.mark.lab
LAB = targets.load("lab")
TOKEN_ENV = "SUITE_TEST_GITOPS_TOKEN"


@pytest.fixture(scope="module")
def kube() -> Kube:
    manager.up()
    # A fresh lab has no Argo CD CRDs until layer 3 runs; the root Application needs them.
    from provisioning.lab import kubectl as lab_kubectl

    crds = [o for o in bootstrap.install_manifest() if o["kind"] == "CustomResourceDefinition"]
    lab_kubectl.apply_objects(crds)
    lab_kubectl.run("wait", "--for=condition=Established", "crd/applications.argoproj.io", "--timeout=60s")
    return connect_to(LAB, runlabel.new_run_id())


@pytest.fixture(scope="module")
def namespace(kube: Kube) -> Iterator[str]:
    name = kube.create_namespace("suite-bootstrap")
    yield name
    kube.delete_namespace(name)


@pytest.fixture
def target(namespace: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> targets.Target:
    """The lab target as an on-prem one would look for the bootstrap: repository credentials by env name."""
    ca = tmp_path / "platform-ca.crt"
    ca.write_text("-----BEGIN CERTIFICATE-----\nnot-a-real-ca\n-----END CERTIFICATE-----\n")
    monkeypatch.setenv(TOKEN_ENV, "token-from-the-environment")
    assert LAB.argocd is not None
    repository = target_access.ArgoCDRepository(
        url="https://gitlab.local/boutique/gitops-repo.git", username="argocd-gitops", password_env=TOKEN_ENV
    )
    gitlab = target_access.GitLab(
        url="https://gitlab.local", registry="registry.local", token_env="GITLAB_TOKEN", ca_file=str(ca)
    )
    argocd = LAB.argocd.model_copy(update={"namespace": namespace, "repository": repository})
    return LAB.model_copy(update={"argocd": argocd, "gitlab": gitlab})


@pytest.fixture(scope="module")
def kubectl() -> bootstrap.Kubectl:
    return bootstrap.kubectl_for(LAB)


def test_install_manifest_is_argo_cds_own_at_the_pinned_version() -> None:
    pinned = recipes.load_versions()["argocd"]["version"]
    objects = bootstrap.install_manifest()
    kinds = {o["kind"] for o in objects}
    assert {"CustomResourceDefinition", "Deployment", "StatefulSet", "ClusterRoleBinding"} <= kinds
    images = {
        c["image"]
        for o in objects
        if o["kind"] in ("Deployment", "StatefulSet")
        for c in o["spec"]["template"]["spec"].get("containers", [])
    }
    argocd_images = {i for i in images if "argoproj/argocd" in i}
    assert argocd_images == {f"quay.io/argoproj/argocd:{pinned}"}, images


def test_install_objects_move_into_the_namespace() -> None:
    objects = bootstrap.install_objects("platform-argocd")
    namespaced = [
        o
        for o in objects
        if o["kind"] not in ("ClusterRole", "ClusterRoleBinding", "CustomResourceDefinition")
    ]
    assert namespaced and all(o["metadata"]["namespace"] == "platform-argocd" for o in namespaced)
    subjects = [s for o in objects if o["kind"] == "ClusterRoleBinding" for s in o["subjects"]]
    assert subjects and all(s["namespace"] == "platform-argocd" for s in subjects)


def test_rendered_install_passes_a_server_side_dry_run(kubectl: bootstrap.Kubectl, namespace: str) -> None:
    objects = bootstrap.install_objects(namespace)
    assert bootstrap.apply(kubectl, objects, "install", dry_run=True) == []
    broken = copy.deepcopy(objects)
    server = next(o for o in broken if o["kind"] == "Deployment" and o["metadata"]["name"] == "argocd-server")
    server["spec"]["replicas"] = "two"
    with pytest.raises(bootstrap.KubectlError, match="replicas"):
        bootstrap.apply(kubectl, broken, "install", dry_run=True)


def test_credentials_ingress_and_root_application_apply_once(
    kubectl: bootstrap.Kubectl, target: targets.Target, namespace: str
) -> None:
    groups = {
        "repository": bootstrap.repository_objects(target, namespace),
        "ingress": bootstrap.ingress_objects(kubectl, namespace),
        "bootstrap": bootstrap.bootstrap_objects(kubectl, target, namespace),
    }
    first = [key for group, objects in groups.items() for key in bootstrap.apply(kubectl, objects, group)]
    assert first == [
        f"ConfigMap/{namespace}/argocd-tls-certs-cm",
        f"Secret/{namespace}/repo-gitops-repo",
        f"Ingress/{namespace}/argocd-server",
        f"Application/{namespace}/platform",
    ]
    again = [key for group, objects in groups.items() for key in bootstrap.apply(kubectl, objects, group)]
    assert again == []


def test_root_application_reads_the_targets_gitops_repo(
    kubectl: bootstrap.Kubectl, target: targets.Target
) -> None:
    (app,) = bootstrap.bootstrap_objects(kubectl, target, "argocd")
    assert app["spec"]["source"]["repoURL"] == "https://gitlab.local/boutique/gitops-repo.git"
    assert app["spec"]["source"]["path"] == "platform" and app["spec"]["syncPolicy"]["automated"]["selfHeal"]


def test_missing_token_stops_before_any_change(
    kube: Kube, target: targets.Target, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(TOKEN_ENV)
    unused = f"suite-unused-{kube.run_id}".lower()
    argocd = target.argocd.model_copy(update={"namespace": unused})  # type: ignore[union-attr]
    with pytest.raises(bootstrap.BootstrapError) as err:
        bootstrap.ensure(target.model_copy(update={"argocd": argocd}))
    assert (
        str(err.value)
        == f"argocd.repository: environment variable {TOKEN_ENV} (gitops-repo token) is not set"
    )
    assert not kube.core.list_namespace(field_selector=f"metadata.name={unused}").items


def test_the_push_webhook_secret_is_made_once_and_gitlab_sends_it(
    kubectl: bootstrap.Kubectl, target: targets.Target, namespace: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    state = FakeGitLab()
    server = serve(state)
    try:
        gitlab = target.gitlab.model_copy(  # type: ignore[union-attr]
            update={"url": f"http://127.0.0.1:{server.server_address[1]}", "ca_file": None}
        )
        monkeypatch.setenv(gitlab.token_env, FAKE_GITLAB_TOKEN)
        state.projects["boutique/gitops-repo"] = {"id": 7, "path_with_namespace": "boutique/gitops-repo"}
        onprem = target.model_copy(update={"gitlab": gitlab})
        url = f"{target.argocd.url.rstrip('/')}/api/webhook"  # type: ignore[union-attr]
        first = bootstrap.push_webhook(onprem, kubectl, namespace)
        assert first == [f"Secret/{namespace}/argocd-secret", f"GitLab push webhook of gitops-repo to {url}"]
        token, made = bootstrap.webhook_secret(kubectl, namespace)
        (hook,) = state.items("projects", 7, "hooks").values()
        assert not made and len(token) >= 32 and state.hook_tokens[str(hook["id"])] == token
        assert bootstrap.push_webhook(onprem, kubectl, namespace) == []  # the second run changes nothing
        kubectl.run("delete", "secret", "-n", namespace, bootstrap.ARGOCD_SECRET)  # the secret is lost
        assert bootstrap.push_webhook(onprem, kubectl, namespace) == first  # a new one, and GitLab gets it
        new, _ = bootstrap.webhook_secret(kubectl, namespace)
        assert new != token and state.hook_tokens[str(hook["id"])] == new
    finally:
        server.shutdown()


def test_install_yaml_is_parsed_once_and_each_caller_gets_its_own_copy() -> None:
    """install_objects rewrites namespaces; the next caller still gets install.yaml as upstream wrote it."""
    moved = bootstrap.install_objects("somewhere-else")
    assert {o["metadata"].get("namespace") for o in moved if o["kind"] == "Deployment"} == {"somewhere-else"}
    again = bootstrap.install_manifest()
    assert {o["metadata"].get("namespace") for o in again if o["kind"] == "Deployment"} == {None}
    assert bootstrap._install_manifest.cache_info().hits >= 1
