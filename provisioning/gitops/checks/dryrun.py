"""Server-side dry-run apply of rendered objects against a real apiserver (the lab's), in a scratch
namespace so nothing of the real namespaces is touched. Kinds the apiserver does not serve (CRDs that
are not installed) are returned as skipped: the schema check covers them."""

from __future__ import annotations

import copy

from kubernetes import dynamic
from kubernetes.client import ApiClient
from kubernetes.client.exceptions import ApiException
from kubernetes.dynamic.exceptions import ResourceNotFoundError

from provisioning.gitops.checks import Finding, finding

FIELD_MANAGER = "boutique-gitops-check"


def check(api: ApiClient, objects: list[dict], namespace: str) -> tuple[list[Finding], list[str]]:
    client = dynamic.DynamicClient(api)
    # The client keeps API discovery in a temp file per server address; a recreated lab may lack CRDs
    # the cached discovery still lists.
    client.resources.invalidate_cache()
    findings, skipped = [], []
    for obj in objects:
        try:
            resource = client.resources.get(api_version=obj["apiVersion"], kind=obj["kind"])
        except ResourceNotFoundError:
            skipped.append(f"{obj['kind']}/{obj['metadata']['name']}")
            continue
        body = copy.deepcopy(obj)
        if resource.namespaced:
            body["metadata"]["namespace"] = namespace
        try:
            resource.server_side_apply(
                body=body,
                name=body["metadata"]["name"],
                namespace=body["metadata"].get("namespace"),
                field_manager=FIELD_MANAGER,
                force_conflicts=True,
                dry_run="All",
            )
        except ApiException as exc:
            findings.append(finding(obj, "server-dry-run", f"{exc.status} {exc.reason}: {_message(exc)}"))
    return findings, skipped


def _message(exc: ApiException) -> str:
    import json

    try:
        return json.loads(exc.body).get("message", exc.body)
    except (TypeError, ValueError):
        return str(exc.body)
