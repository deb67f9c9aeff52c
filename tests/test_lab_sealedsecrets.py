"""Real Sealed Secrets in the lab: the controller built from the module proxy runs against the lab's
apiserver, kubeseal seals with its certificate, and a SealedSecret opens into its Secret only where it was
sealed for."""

from __future__ import annotations

import base64
import secrets
from collections.abc import Iterator

import pytest
import yaml
from kubernetes.client.exceptions import ApiException

from boutique_suite.clients.kube import Kube, connect_to
from boutique_suite.run import runlabel, targets, waits
from provisioning.lab import manager, processes
from provisioning.lab.services import sealedsecrets

pytestmark = pytest.mark.lab
GROUP, VERSION, PLURAL = "bitnami.com", "v1alpha1", "sealedsecrets"


@pytest.fixture(scope="module")
def controller() -> sealedsecrets.Controller:
    manager.up()
    return sealedsecrets.ensure()


@pytest.fixture(scope="module")
def kube(controller: sealedsecrets.Controller) -> Kube:
    lab = targets.load("lab")
    return connect_to(lab, runlabel.new_run_id())


@pytest.fixture(scope="module")
def namespace(kube: Kube) -> Iterator[str]:
    name = kube.create_namespace("suite-sealed")
    yield name
    kube.delete_namespace(name)


def apply_sealed(kube: Kube, namespace: str, manifest: dict) -> None:
    manifest["metadata"]["labels"] = kube.labels()
    kube.custom.create_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, manifest)


def synced(kube: Kube, namespace: str, name: str) -> tuple[str | None, str]:
    """The SealedSecret's Synced condition: (status, message), (None, '') while it has none."""
    obj = kube.custom.get_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, name)
    for cond in (obj.get("status") or {}).get("conditions") or []:
        if cond.get("type") == "Synced":
            return cond.get("status"), cond.get("message", "")
    return None, ""


def secret_data(kube: Kube, namespace: str, name: str) -> dict[str, str] | None:
    try:
        secret = kube.core.read_namespaced_secret(name, namespace)
    except ApiException as exc:
        if exc.status == 404:
            return None
        raise
    return {k: base64.b64decode(v).decode() for k, v in (secret.data or {}).items()}


def test_ensure_again_starts_nothing_new(controller: sealedsecrets.Controller) -> None:
    again = sealedsecrets.ensure()
    assert again.pid == controller.pid
    assert processes.info(sealedsecrets.NAME).alive
    assert sealedsecrets.cert_pem().startswith(b"-----BEGIN CERTIFICATE-----")


def test_sealed_secret_opens_into_the_secret_with_its_data(kube: Kube, namespace: str) -> None:
    data = {"username": "boutique-ci", "password": f"pw-{secrets.token_hex(12)}"}
    manifest = sealedsecrets.seal("registry-credentials", namespace, data, type="Opaque")

    text = yaml.safe_dump(manifest)
    for value in data.values():
        assert value not in text and base64.b64encode(value.encode()).decode() not in text
    assert set(manifest["spec"]["encryptedData"]) == set(data)

    apply_sealed(kube, namespace, manifest)

    def opened() -> waits.Check:
        status, message = synced(kube, namespace, "registry-credentials")
        got = secret_data(kube, namespace, "registry-credentials")
        if status == "False":
            return waits.failed(f"Synced=False: {message}")
        if status == "True" and got == data:
            return waits.succeeded("Secret present with the sealed data, Synced=True")
        keys = sorted(got) if got is not None else None
        return waits.pending(f"Synced={status}, Secret keys {keys}")

    waits.until(opened, timeout=30, what="SealedSecret opened", interval=0.5)


def test_sealed_secret_for_another_namespace_is_rejected(kube: Kube, namespace: str) -> None:
    manifest = sealedsecrets.seal("stolen", "some-other-namespace", {"token": secrets.token_hex(16)})
    manifest["metadata"]["namespace"] = namespace  # copied into a namespace it was not sealed for
    manifest["spec"]["template"].setdefault("metadata", {})["namespace"] = namespace
    apply_sealed(kube, namespace, manifest)

    def rejected() -> waits.Check:
        status, message = synced(kube, namespace, "stolen")
        if status == "True":
            return waits.failed("Synced=True for a SealedSecret sealed for another namespace")
        if status == "False":
            return waits.succeeded(message)
        return waits.pending("no Synced condition yet")

    waited = waits.until(rejected, timeout=30, what="SealedSecret rejected", interval=0.5)
    assert "decrypt" in waited.check.detail.lower() or "no key" in waited.check.detail.lower()
    assert secret_data(kube, namespace, "stolen") is None
