"""Sealed Secrets as the scenarios use it: the controller, what gitops-repo holds, sealing a Secret with
kubeseal, and what the controller does with a SealedSecret (opens it, or refuses it).

A Secret's data is never logged, attached or put in an assertion message: it is compared by digest.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import yaml
from kubernetes.client.exceptions import ApiException

from boutique_suite.actions import journal
from boutique_suite.clients.kube import Kube
from boutique_suite.context.sites import site_for
from boutique_suite.run import runlabel, waits
from boutique_suite.run.targets import Target
from boutique_suite.run.undo import UndoStack

GROUP, VERSION, PLURAL = "bitnami.com", "v1alpha1", "sealedsecrets"
KEY = "run-id"


class SealingError(Exception):
    """kubeseal or the controller cannot be used; the message says what to fix."""


@dataclass(frozen=True)
class Sealed:
    """A SealedSecret manifest and the digest of the data it was sealed from (never the data)."""

    name: str
    namespace: str
    manifest: dict
    digest: str


def digest(data_b64: dict[str, str]) -> str:
    """sha256 of a Secret's ``data`` (base64 values, as the API returns them), key order independent."""
    return hashlib.sha256(json.dumps(data_b64, sort_keys=True).encode()).hexdigest()


# --- the controller --------------------------------------------------------------------------------


def expect_controller_running(target: Target) -> dict[str, str]:
    from provisioning import phase7_advanced

    state = phase7_advanced.check(target)
    controller = {k: v for k, v in state.components.items() if "sealed-secrets" in k}
    assert controller, f"the Sealed Secrets controller is not running: {state.detail}"
    site_for(target).expect_sealing_certificate()
    return controller


# --- gitops-repo -----------------------------------------------------------------------------------


@contextmanager
def gitops_checkout(target: Target) -> Iterator[tuple[Path, str]]:
    """(directory, description) of gitops-repo's main, cloned over HTTPS from the target's git server."""
    from boutique_suite.expectations import repos

    with repos.clone(target, "gitops-repo") as work:
        head = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=work, capture_output=True, text=True
        ).stdout.strip()
        yield work, f"gitops-repo at {head} on {site_for(target).git_server}"


def expect_only_sealed_secrets(target: Target) -> list[str]:
    """No file and no kustomize build of gitops-repo yields a plain Secret; it holds SealedSecrets.
    Returns the SealedSecrets found (kind/namespace/name)."""
    from provisioning.gitops.checks import policy, render, report

    with gitops_checkout(target) as (root, where):
        files = sorted(p for p in root.rglob("*.y*ml") if ".git" not in p.parts and "checks" not in p.parts)
        plain, sealed = [], set()
        for path in files:
            for doc in yaml.safe_load_all(path.read_text()):
                if isinstance(doc, dict) and doc.get("kind") == "Secret":
                    plain.append(str(path.relative_to(root)))
        objects = []
        for build in render.BUILDS:
            try:
                objects += render.kustomize(build, root)
            except render.BuildFailed as exc:
                raise AssertionError(f"{where}: kustomize build {build} failed: {exc}") from None
        findings = [f for f in policy.sealed_only(objects) if f.rule == "sealed-only"]
        for o in objects:
            if o.get("kind") == "SealedSecret":
                sealed.add(f"SealedSecret/{o['metadata'].get('namespace', '')}/{o['metadata']['name']}")
    assert not plain, f"{where}: plain Secret manifests in {plain}"
    assert not findings, f"{where}: {report(findings)}"
    assert sealed, f"{where}: no SealedSecret at all (the registry credentials should be one)"
    return sorted(sealed)


# --- sealing ---------------------------------------------------------------------------------------


def kubeseal(target: Target) -> Path:
    """The kubeseal the target uses (the lab's pinned build, or the one on PATH); SealingError naming the
    fix."""
    return site_for(target).kubeseal_binary()


def encode(data: dict[str, str]) -> dict[str, str]:
    """A Secret's ``data`` from plain values (base64, as the API holds them)."""
    return {k: base64.b64encode(v.encode()).decode() for k, v in data.items()}


def seal_run_id(target: Target, namespace: str, name: str, run_id: str) -> Sealed:
    """A Secret ``{run-id: <run id>}`` sealed with kubeseal for ``name`` in ``namespace`` (strict scope)."""
    data = {KEY: run_id}
    manifest = site_for(target).seal(name, namespace, data)
    return Sealed(name, namespace, manifest, digest(encode(data)))


def kubeseal_secret(
    target: Target,
    binary: Path,
    name: str,
    namespace: str,
    data: dict[str, str],
    controller_ns: str,
    controller: str,
) -> dict:
    """The SealedSecret ``binary`` (kubeseal) makes of a Secret holding ``data``, with the certificate of the
    controller ``controller`` in ``controller_ns`` fetched through the target's kubeconfig."""
    encoded = encode(data)
    secret = {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": name, "namespace": namespace},
        "type": "Opaque",
        "data": encoded,
    }
    argv = [
        str(binary),
        "--kubeconfig",
        str(target.cluster.kubeconfig_path),
        "--context",
        target.cluster.context,
        "--controller-namespace",
        controller_ns,
        "--controller-name",
        controller,
        "--format",
        "yaml",
    ]
    proc = subprocess.run(
        argv, input=json.dumps(secret), capture_output=True, text=True, timeout=60, env=dict(os.environ)
    )
    if proc.returncode != 0:
        stderr = proc.stderr
        for value in encoded.values():
            stderr = stderr.replace(value, "***").replace(base64.b64decode(value).decode(), "***")
        raise SealingError(f"kubeseal failed (exit {proc.returncode}): {stderr.strip()[:300]}")
    return yaml.safe_load(proc.stdout)


# --- applying and what the controller does -----------------------------------------------------------


def apply(kube: Kube, sealed: Sealed, namespace: str) -> None:
    """Create the SealedSecret in ``namespace`` (its own, or another one it was not sealed for) with the
    run labels on it and on the Secret it would open into."""
    manifest = json.loads(json.dumps(sealed.manifest))
    manifest["metadata"] = {"name": sealed.name, "namespace": namespace, "labels": kube.labels()}
    template = manifest["spec"].setdefault("template", {})
    meta = template.setdefault("metadata", {})
    meta.update(name=sealed.name, namespace=namespace)
    meta["labels"] = {**(meta.get("labels") or {}), **kube.labels()}
    kube.custom.create_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, manifest)


def delete(kube: Kube, namespace: str, name: str) -> None:
    """Delete the SealedSecret and the Secret it opened into (either may be absent)."""
    for call in (
        lambda: kube.custom.delete_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, name),
        lambda: kube.core.delete_namespaced_secret(name, namespace),
    ):
        try:
            call()
        except ApiException as exc:
            if exc.status != 404:
                raise


def delete_leftovers(kube: Kube, namespace: str) -> list[str]:
    """SealedSecrets and Secrets runs whose Lease is gone left in ``namespace`` (a shared one)."""
    selector = runlabel.leftovers_selector(kube.run_id, journal.live_runs(kube))
    found = kube.custom.list_namespaced_custom_object(
        GROUP, VERSION, namespace, PLURAL, label_selector=selector
    )["items"]
    names = {o["metadata"]["name"] for o in found}
    names |= {
        s.metadata.name for s in kube.core.list_namespaced_secret(namespace, label_selector=selector).items
    }
    for name in sorted(names):
        delete(kube, namespace, name)
    return sorted(names)


def _synced(kube: Kube, namespace: str, name: str) -> tuple[str | None, str]:
    obj = kube.custom.get_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, name)
    for cond in (obj.get("status") or {}).get("conditions") or []:
        if cond.get("type") == "Synced":
            return cond.get("status"), cond.get("message", "")
    return None, ""


def _secret_digest(kube: Kube, namespace: str, name: str) -> str | None:
    try:
        secret = kube.core.read_namespaced_secret(name, namespace)
    except ApiException as exc:
        if exc.status == 404:
            return None
        raise
    return digest(secret.data or {})


def expect_opened(kube: Kube, sealed: Sealed, timeout: float) -> float:
    """The controller created the Secret with the sealed data (same digest); returns the seconds."""
    ns, name = sealed.namespace, sealed.name

    def probe() -> waits.Check:
        status, message = _synced(kube, ns, name)
        got = _secret_digest(kube, ns, name)
        if status == "False":
            return waits.failed(f"SealedSecret {ns}/{name} Synced=False: {message}")
        if got is not None and got != sealed.digest:
            return waits.failed(
                f"Secret {ns}/{name} data differs from what was sealed (digest {got[:12]}, "
                f"sealed {sealed.digest[:12]})"
            )
        if got == sealed.digest:
            return waits.succeeded(f"Secret {ns}/{name} has the sealed data (digest {got[:12]})")
        return waits.pending(f"Synced={status}, no Secret {ns}/{name} yet")

    return waits.until(probe, timeout=timeout, what=f"SealedSecret {ns}/{name} opened", interval=0.5).seconds


def _refusal_event(kube: Kube, namespace: str, name: str) -> str | None:
    for event in kube.events(namespace):
        obj = event.involved_object
        if obj.kind == "SealedSecret" and obj.name == name and event.type == "Warning":
            return f"{event.reason}: {event.message}"
    return None


def expect_refused(kube: Kube, namespace: str, name: str, timeout: float) -> str:
    """The controller refused to open the SealedSecret in ``namespace``: its Synced condition (or a
    Warning event) says it cannot decrypt, and no Secret appeared. Returns the controller's message."""

    def probe() -> waits.Check:
        status, message = _synced(kube, namespace, name)
        if status == "True" or _secret_digest(kube, namespace, name) is not None:
            return waits.failed(f"the controller opened {namespace}/{name}: a Secret exists there")
        if status == "False":
            return waits.succeeded(message)
        if event := _refusal_event(kube, namespace, name):
            return waits.succeeded(event)
        return waits.pending("no Synced condition or Warning event yet")

    message = waits.until(
        probe, timeout=timeout, what=f"SealedSecret {namespace}/{name} refused", interval=0.5
    ).check.detail
    assert "decrypt" in message.lower(), f"refused, but not for decryption: {message}"
    assert _secret_digest(kube, namespace, name) is None, f"a Secret {namespace}/{name} appeared"
    return message


def seal_run_id_undoably(kube: Kube, target: Target, namespace: str, run_id: str, undo: UndoStack) -> Sealed:
    """After removing what earlier runs left in ``namespace``, seal the run id as ``suite-sealed-<run id>``
    for ``namespace``; the SealedSecret's deletion is on ``undo`` before it is applied."""
    delete_leftovers(kube, namespace)
    secret = seal_run_id(target, namespace, f"suite-sealed-{run_id}", run_id)
    undo.push(
        f"delete SealedSecret {namespace}/{secret.name}",
        lambda: delete(kube, namespace, secret.name),
        journal=("delete_sealed_secret", {"namespace": namespace, "name": secret.name}),
    )
    return secret
