"""imagePullSecrets as the plan checks them: every ServiceAccount of a namespace names the registry's pull
secret, the secret holds credentials for the registry (never shown), and the API server's ServiceAccount
admission gives a new pod that secret."""

from __future__ import annotations

import base64
import json

from kubernetes import client

from boutique_suite.clients.kube import Kube
from boutique_suite.expectations.cicd import IMAGE_PREFIX


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
