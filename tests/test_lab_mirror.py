"""The lab's registry as an air-gapped site's mirror: the images upstream manifests name (Argo CD's pinned
install.yaml, the Online Boutique's release) are built here and pulled by the nodes under their upstream
names; the lab's Argo CD, installed by the on-prem code from install.yaml, runs as pods on the lab's nodes,
answers its API over TLS verified against the platform CA and reads gitops-repo from its pods."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from boutique_suite.clients.argocd import ArgoCDClient, ArgoCDUnavailable
from boutique_suite.expectations import gitops_checks
from boutique_suite.run import targets
from provisioning import LayerRunner, argocd_bootstrap
from provisioning.lab import build, kubectl, manager, processes
from provisioning.lab.services import argocd as lab_argocd
from provisioning.lab.services import catalog, gitserver, oci, registry, upstream_images


def test_every_image_the_lab_installs_has_a_recipe_and_a_mirrored_registry() -> None:
    refs = upstream_images.install_images(with_dex=lab_argocd.with_dex())
    assert f"quay.io/argoproj/argocd:{argocd_bootstrap.version()}" in refs
    assert not lab_argocd.with_dex() and not [r for r in refs if "dex" in r], "the lab has no dex image"
    assert [r for r in upstream_images.install_images() if "dexidp/dex" in r], "install.yaml's dex is gone"
    for ref in refs:
        upstream_images.recipe_for(ref)
        assert upstream_images.split(ref)[0] in registry.MIRRORED_UPSTREAMS, ref


def test_a_site_without_sso_leaves_out_only_dexs_deployment() -> None:
    def names(with_dex: bool) -> set[tuple[str, str]]:
        objects = argocd_bootstrap.install_objects("argocd", with_dex=with_dex)
        return {(o["kind"], o["metadata"]["name"]) for o in objects}

    assert names(True) - names(False) == {("Deployment", "argocd-dex-server")}
    assert argocd_bootstrap.DEX in argocd_bootstrap.workloads(True)
    assert argocd_bootstrap.DEX not in argocd_bootstrap.workloads(False)


def test_an_image_without_a_recipe_or_registry_is_refused_by_name() -> None:
    with pytest.raises(upstream_images.UpstreamImageError, match="no recipe builds this image"):
        upstream_images.recipe_for("docker.io/library/nginx:1.27")
    with pytest.raises(upstream_images.UpstreamImageError, match="not a registry/repository:tag"):
        upstream_images.split("argocd:v3")


def test_the_argocd_image_has_a_command_for_everything_install_yaml_runs() -> None:
    """Every /usr/local/bin/<cmd> a container of install.yaml starts is the binary or one of its links."""
    provided = {"argocd", "entrypoint.sh", *upstream_images.ARGOCD_LINKS}
    started = set()
    for obj in argocd_bootstrap.install_manifest():
        pod = (obj.get("spec") or {}).get("template", {}).get("spec") or {}
        for container in (*pod.get("initContainers", []), *pod.get("containers", [])):
            if container["image"].startswith(upstream_images.ARGOCD.repository):
                words = [*(container.get("command") or []), *(container.get("args") or [])[:1]]
                started |= {w.rpartition("/")[2] for w in words if w.startswith("/usr/local/bin/")}
    assert started, "install.yaml starts no /usr/local/bin command: the parsing is wrong"
    assert started <= provided, started - provided
    settings = upstream_images.ARGOCD.settings
    assert settings["Entrypoint"] == ["/usr/bin/tini", "--"]
    assert settings["User"] == str(upstream_images.ARGOCD_UID), "install.yaml runs it as non-root"


def test_the_cache_key_follows_the_bytes_of_every_file_copied_in(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(build, "DIGESTS", tmp_path / "digests.json")
    binary = tmp_path / "argocd"
    binary.write_bytes(b"one")
    first = upstream_images.cache_key(upstream_images.ARGOCD, "v1", {"/usr/local/bin/argocd": binary})
    again = upstream_images.cache_key(upstream_images.ARGOCD, "v1", {"/usr/local/bin/argocd": binary})
    binary.write_bytes(b"three")  # another size: two writes within one clock tick may share an mtime
    changed = upstream_images.cache_key(upstream_images.ARGOCD, "v1", {"/usr/local/bin/argocd": binary})
    assert first == again != changed
    assert upstream_images.cache_key(upstream_images.ARGOCD, "v2", {}) != upstream_images.cache_key(
        upstream_images.ARGOCD, "v1", {}
    )


def test_a_files_digest_is_kept_until_the_file_changes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The layer-3 ensure hashes 600 MiB each time without this; a rebuilt file is hashed again."""
    import hashlib

    monkeypatch.setattr(build, "DIGESTS", tmp_path / "digests.json")
    layer = tmp_path / "layer.tar"
    layer.write_bytes(b"layer one")
    assert build.sha256(layer) == hashlib.sha256(b"layer one").hexdigest()
    kept = json.loads(build.DIGESTS.read_text())
    kept[str(layer)]["sha256"] = "kept"  # what a second call returns proves it did not read the file again
    build.DIGESTS.write_text(json.dumps(kept))
    assert build.sha256(layer) == "kept"
    layer.write_bytes(b"layer two, rebuilt")
    assert build.sha256(layer) == hashlib.sha256(b"layer two, rebuilt").hexdigest()
    build.DIGESTS.write_text("not json")  # a damaged record costs a hash, never an error
    assert build.sha256(layer) == hashlib.sha256(b"layer two, rebuilt").hexdigest()


def test_the_standin_answers_under_the_boutiques_upstream_names() -> None:
    wanted = catalog.wanted()
    frontend = f"{catalog.UPSTREAM_REPOSITORY}/frontend:{catalog.UPSTREAM_TAG}"
    assert wanted[frontend] == "frontend"
    assert catalog._split(frontend) == ("google-samples/microservices-demo/frontend", catalog.UPSTREAM_TAG)
    assert not any(image.startswith(catalog.UPSTREAM_REPOSITORY + "/redis-cart") for image in wanted)
    assert "us-central1-docker.pkg.dev" in registry.MIRRORED_UPSTREAMS
    with pytest.raises(ValueError, match="neither"):
        catalog._split("ghcr.io/library/redis:alpine")


def test_the_lab_target_names_the_address_and_ca_the_lab_gives_argocd() -> None:
    lab = targets.load("lab")
    assert lab.argocd is not None
    assert lab.argocd.url == lab_argocd.url() == f"https://{lab_argocd.server_address()}"
    assert lab.argocd.ca_path == lab_argocd.ca_file()
    service = lab_argocd.lab_service()["spec"]
    assert service["clusterIP"] == lab_argocd.server_address()
    assert service["selector"] == {"app.kubernetes.io/name": "argocd-server"}


# --- on the lab ---------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def incluster() -> str:
    """The lab's layer 3: Argo CD installed from install.yaml by the on-prem code."""
    LayerRunner(targets.load("lab")).require(3)
    return lab_argocd.NS


def _pods(namespace: str) -> list[dict]:
    return json.loads(kubectl.run("-n", namespace, "get", "pods", "-o", "json"))["items"]


@pytest.mark.lab
def test_argocd_from_install_yaml_runs_as_pods_on_the_lab_nodes_with_upstream_image_names(
    incluster: str,
) -> None:
    pods = _pods(incluster)
    assert {p["metadata"]["labels"].get("app.kubernetes.io/name") for p in pods} >= {
        "argocd-server",
        "argocd-repo-server",
        "argocd-application-controller",
        "argocd-redis",
        "argocd-notifications-controller",
        "argocd-applicationset-controller",
    }
    not_ready = [
        (p["metadata"]["name"], c["name"], c.get("restartCount"))
        for p in pods
        for c in p["status"].get("containerStatuses") or [{"name": "-", "ready": False}]
        if not c.get("ready")
    ]
    assert not not_ready, f"containers not ready: {not_ready}"
    assert "argocd-dex-server" not in {p["metadata"]["labels"].get("app.kubernetes.io/name") for p in pods}
    assert {p["spec"]["nodeName"] for p in pods} <= {h.name for h in manager.NET.hosts}
    images = {c["image"] for p in pods for c in p["spec"]["containers"]}
    assert images == set(upstream_images.install_images(with_dex=False)), images
    assert not [name for name in processes.recorded() if "argocd" in name or name == "redis"], (
        "an Argo CD host process is still running"
    )


@pytest.mark.lab
def test_the_api_answers_over_tls_verified_against_the_platform_ca(incluster: str) -> None:
    lab = targets.load("lab")
    assert lab.argocd is not None and lab.argocd.ca_path == lab_argocd.ca_file()
    client = gitops_checks.argocd_client(lab)
    assert client.version()["Version"].startswith(argocd_bootstrap.version())
    with pytest.raises(ArgoCDUnavailable, match="CERTIFICATE_VERIFY_FAILED"):
        ArgoCDClient.login(lab.argocd.url, lab.argocd.username, lab.argocd.password())  # no platform CA


@pytest.mark.lab
def test_the_incluster_repo_server_reaches_gitops_repo_at_the_lab_gateway(incluster: str) -> None:
    """Through the lab's forward to the git server, with the token and the platform CA that install.yaml's
    repo-server reads from argocd_bootstrap's Secret and argocd-tls-certs-cm."""
    git = gitserver.running()
    assert git is not None
    repos = gitops_checks.argocd_client(targets.load("lab")).repositories()
    states = {r["repo"]: r.get("connectionState", {}).get("status") for r in repos}
    assert states.get(lab_argocd.gitops_repo_url(git)) == "Successful", states


@pytest.mark.lab
def test_installing_twice_changes_nothing(incluster: str) -> None:
    git = gitserver.running()
    assert git is not None
    assert lab_argocd.install(git) == []


@pytest.mark.lab
def test_a_boutique_upstream_image_name_is_pulled_through_the_mirror() -> None:
    """imagePullPolicy Always: the kubelet resolves the upstream name through the nodes' mirror file each
    time (a name the mirror does not serve fails the pull), and runs what the lab's registry serves for it."""
    manager.up()
    repository, tag = "google-samples/microservices-demo/productcatalogservice", catalog.UPSTREAM_TAG
    image = f"us-central1-docker.pkg.dev/{repository}:{tag}"
    namespace = "mirror-check"
    container = {"name": "server", "image": image, "imagePullPolicy": "Always"}
    pod = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "productcatalogservice", "namespace": namespace},
        "spec": {"containers": [container], "restartPolicy": "Never"},
    }
    kubectl.apply_objects([{"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": namespace}}, pod])
    try:
        kubectl.run(
            "-n", namespace, "wait", "pod/productcatalogservice", "--for=condition=Ready", "--timeout=120s"
        )
        status = json.loads(kubectl.run("-n", namespace, "get", "pod", "productcatalogservice", "-o", "json"))
        served = oci.digest(oci.get_manifest(catalog.running(), repository, tag)[0])
        assert status["status"]["containerStatuses"][0]["imageID"].endswith(served)
    finally:
        kubectl.run("delete", "namespace", namespace, "--ignore-not-found", "--wait=false")
