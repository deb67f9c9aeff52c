"""imagePullSecrets as the plan checks them: every ServiceAccount of a namespace names the registry's pull
secret, the secret holds credentials for the registry (never shown), the API server's ServiceAccount
admission gives a new pod that secret, and the registry itself refuses a node's pull without it."""

from __future__ import annotations

import base64
import json
import re

from kubernetes import client
from kubernetes.client.exceptions import ApiException

from boutique_suite.clients.kube import RESTRICTED, Kube, create_pod_undoably
from boutique_suite.expectations.cicd import IMAGE_PREFIX
from boutique_suite.run import waits
from boutique_suite.run.undo import UndoStack


def expect_pull_secret_on_service_accounts(kube: Kube, namespace: str, secret: str) -> list[str]:
    accounts = kube.core.list_namespaced_service_account(namespace).items
    names = sorted(a.metadata.name for a in accounts)
    assert "default" in names, f"no ServiceAccount default in {namespace}: {names}"
    without = [
        a.metadata.name for a in accounts if secret not in [s.name for s in a.image_pull_secrets or []]
    ]
    assert not without, f"ServiceAccounts in {namespace} without imagePullSecret {secret}: {without}"
    return names


def expect_dockerconfig_secret(kube: Kube, namespace: str, name: str, kind: str, registry: str) -> None:
    secret = kube.core.read_namespaced_secret(name, namespace)
    assert secret.type == kind, f"Secret {name} is of type {secret.type}"
    config = json.loads(base64.b64decode((secret.data or {}).get(".dockerconfigjson", "") or b"{}"))
    auths = config.get("auths") or {}
    assert registry in auths, f"Secret {name} holds credentials for {sorted(auths)}, not {registry}"
    assert auths[registry].get("auth") or auths[registry].get("password"), f"no credentials for {registry}"


def expect_admission_adds_pull_secret(kube: Kube, namespace: str, account: str, secret: str) -> list[str]:
    """A pod with ServiceAccount ``account`` and no imagePullSecrets of its own, created as a server-side
    dry run: the real kube-apiserver's ServiceAccount admission fills in the account's pull secrets, and
    nothing is stored."""
    container = client.V1Container(
        name="probe",
        image=f"{IMAGE_PREFIX}/frontend:pull-secret-probe",
        resources=client.V1ResourceRequirements(
            requests={"cpu": "10m", "memory": "16Mi"}, limits={"cpu": "10m", "memory": "16Mi"}
        ),
        security_context=client.V1SecurityContext(
            allow_privilege_escalation=False,
            run_as_non_root=True,
            run_as_user=1000,
            read_only_root_filesystem=True,
            capabilities=client.V1Capabilities(drop=["ALL"]),
            seccomp_profile=client.V1SeccompProfile(type="RuntimeDefault"),
        ),
    )
    pod = client.V1Pod(
        metadata=client.V1ObjectMeta(generate_name="pull-secret-probe-", labels=kube.labels()),
        spec=client.V1PodSpec(service_account_name=account, containers=[container]),
    )
    created = kube.core.create_namespaced_pod(namespace, pod, dry_run="All")
    given = [s.name for s in created.spec.image_pull_secrets or []]
    assert secret in given, f"a pod of ServiceAccount {account} was given imagePullSecrets {given}"
    return given


# --- the registry's side: a pull without credentials is refused, with them it works -------------------

AUTH_REFUSED = re.compile(
    r"\b(401|403)\b|unauthori[sz]ed|authentication required|authorization failed|denied", re.I
)
NO_PULL_ACCOUNT = "suite-no-pull-secret"


def start_pull(kube: Kube, namespace: str, image: str, pull_secret: str | None, undo: UndoStack) -> str:
    """A pod that must pull ``image`` now (imagePullPolicy Always: a node's cached copy does not count),
    run as a ServiceAccount of the run's with no pull secret, naming ``pull_secret`` or nothing itself;
    deleted (with the account) on ``undo``. Returns the pod's name."""
    account = f"{NO_PULL_ACCOUNT}-{kube.run_id}".lower()
    try:
        kube.core.create_namespaced_service_account(
            namespace,
            client.V1ServiceAccount(metadata=client.V1ObjectMeta(name=account, labels=kube.labels())),
        )
    except ApiException as exc:
        if exc.status != 409:  # 409: the scenario's first pod made it
            raise
    else:
        undo.push(
            f"delete ServiceAccount {namespace}/{account}",
            lambda: kube.core.delete_namespaced_service_account(account, namespace),
        )
    name = f"pull-{'with' if pull_secret else 'without'}-secret-{kube.run_id}".lower()
    small = {"cpu": "10m", "memory": "16Mi"}
    container = client.V1Container(
        name="pull",
        image=image,
        image_pull_policy="Always",
        resources=client.V1ResourceRequirements(requests=small, limits=small),
        security_context=RESTRICTED,
    )
    secrets = [client.V1LocalObjectReference(name=pull_secret)] if pull_secret else None
    pod = client.V1Pod(
        metadata=client.V1ObjectMeta(name=name, labels=kube.labels({"app": "pull-probe"})),
        spec=client.V1PodSpec(
            service_account_name=account,
            automount_service_account_token=False,
            image_pull_secrets=secrets,
            containers=[container],
        ),
    )
    return create_pod_undoably(kube, namespace, pod, undo)


def _pull_failures(kube: Kube, namespace: str, pod: str) -> list[str]:
    events = kube.core.list_namespaced_event(namespace, field_selector=f"involvedObject.name={pod}").items
    return [e.message or "" for e in events if e.reason == "Failed" and "pull" in (e.message or "").lower()]


def _running(kube: Kube, namespace: str, pod: str) -> bool:
    return kube.core.read_namespaced_pod(pod, namespace).status.phase == "Running"


def expect_pull_refused(kube: Kube, namespace: str, pod: str, timeout: float) -> str:
    """The node's pull of ``pod``'s image fails because the registry wants credentials; the message."""

    def refused() -> waits.Check:
        if _running(kube, namespace, pod):
            return waits.failed("the pod runs: the registry served the image without credentials")
        failures = _pull_failures(kube, namespace, pod)
        if auth := [m for m in failures if AUTH_REFUSED.search(m)]:
            return waits.succeeded(auth[0], value=auth[0])
        if failures:
            return waits.failed(f"the pull failed for another reason than credentials: {failures[-1]}")
        return waits.pending("no pull has failed yet")

    what = f"pod {namespace}/{pod}'s pull refused for lack of credentials"
    return waits.until(refused, timeout=timeout, what=what, interval=1.0).check.value


def expect_pod_runs(kube: Kube, namespace: str, pod: str, timeout: float) -> float:
    """``pod`` pulled its image and runs; seconds it took. A failed pull is not final: a kubelet that
    cannot read the pull secret yet (the Node authorizer learns of a just-bound pod's secrets a moment
    later: FailedToRetrieveImagePullSecret) pulls without it, gets 401 and retries after its back-off."""

    def runs() -> waits.Check:
        if _running(kube, namespace, pod):
            return waits.succeeded()
        failures = _pull_failures(kube, namespace, pod)
        return waits.pending(f"last pull failure: {failures[-1]}" if failures else "not running yet")

    return waits.until(runs, timeout=timeout, what=f"pod {namespace}/{pod} running", interval=1.0).seconds
