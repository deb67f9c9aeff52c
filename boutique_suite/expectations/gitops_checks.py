"""Expectations about Argo CD and its access to gitops-repo, read through Kubernetes and Argo CD's API."""

from __future__ import annotations

import base64
import datetime
import json
import re
import socket
import ssl
import tempfile
from urllib.parse import urlparse

from boutique_suite.clients.argocd import ArgoCDClient, ArgoCDUnavailable
from boutique_suite.clients.kube import Kube
from boutique_suite.run import waits
from boutique_suite.run.targets import Target

REPO_SECRET_LABEL = "argocd.argoproj.io/secret-type"
_LOGFMT_TIME = re.compile(r'\btime="?([0-9T:.+Z-]+)"?')


def argocd_client(target: Target) -> ArgoCDClient:
    assert target.argocd is not None, f"target {target.name} has no argocd section"
    try:
        access = target.argocd
        return ArgoCDClient.login(access.url, access.username, access.password(), access.ca_path)
    except ArgoCDUnavailable as exc:
        raise AssertionError(str(exc)) from None


def expect_components_running(target: Target, kube: Kube) -> dict[str, str]:
    """Lab: the local processes run; on-prem: the Deployments / StatefulSet in Argo CD's namespace."""
    from boutique_suite.context.sites import site_for

    return site_for(target).argocd_components(kube)


def expect_ingress_routes(kube: Kube, namespace: str, ingress: str, host: str, service: str) -> None:
    ing = kube.networking.read_namespaced_ingress(ingress, namespace)
    routes = [
        (rule.host, path.backend.service.name)
        for rule in ing.spec.rules or []
        for path in (rule.http.paths if rule.http else [])
        if path.backend.service
    ]
    assert (host, service) in routes, f"Ingress {namespace}/{ingress}: {routes}, not {host} -> {service}"
    kube.core.read_namespaced_service(service, namespace)  # the backend Service exists


def expect_api_and_login(target: Target) -> str:
    version = argocd_client(target).version()
    assert version.get("Version"), f"Argo CD answered no version: {version}"
    return version["Version"]


def repository_secret(kube: Kube, namespace: str, repo: str) -> dict[str, str]:
    selector = f"{REPO_SECRET_LABEL}=repository"
    for secret in kube.core.list_namespaced_secret(namespace, label_selector=selector).items:
        fields = {k: v for k, v in (secret.data or {}).items() if k in ("url", "name")}
        data = {k: base64.b64decode(v).decode() for k, v in fields.items()}
        if repo in data.get("url", "") or data.get("name") == repo:
            return {"secret": secret.metadata.name, "url": data["url"]}  # never the password
    raise AssertionError(f"no Secret labelled {REPO_SECRET_LABEL}=repository for {repo} in {namespace}")


def expect_repository_connection(target: Target, repo_url: str, status: str) -> dict:
    repos = {r["repo"]: r for r in argocd_client(target).repositories(force_refresh=True)}
    assert repo_url in repos, f"Argo CD does not know {repo_url}: {sorted(repos)}"
    state = repos[repo_url].get("connectionState", {})
    assert state.get("status") == status, f"{repo_url}: {state.get('status')}: {state.get('message')}"
    return repos[repo_url]


def expect_verified_tls(kube: Kube, namespace: str, repository: dict) -> None:
    """No insecure flag; the CA Argo CD holds for the host verifies the server's certificate for real."""
    assert not repository.get("insecure"), f"{repository['repo']} is configured with insecure: true"
    host = urlparse(repository["repo"]).hostname or ""
    port = urlparse(repository["repo"]).port or 443
    certs = kube.core.read_namespaced_config_map("argocd-tls-certs-cm", namespace).data or {}
    assert host in certs, f"argocd-tls-certs-cm has no CA for {host}: {sorted(certs)}"
    with tempfile.NamedTemporaryFile("w", suffix=".pem") as ca:
        ca.write(certs[host])
        ca.flush()
        context = ssl.create_default_context(cafile=ca.name)
        with (
            socket.create_connection((host, port), timeout=5) as raw,
            context.wrap_socket(raw, server_hostname=host) as tls,
        ):
            assert tls.getpeercert(), f"{host}:{port} presented no certificate"


# --- Applications -----------------------------------------------------------------------------------


def expect_synced_to_head(client: ArgoCDClient, app: str, head: str, timeout: float) -> dict:
    from boutique_suite.clients.argocd import wait_synced_and_healthy

    return wait_synced_and_healthy(client, app, timeout, revision=head).check.value  # type: ignore[return-value]


def expect_resources_synced(app: dict) -> None:
    out = [
        f"{r['kind']}/{r['name']}: {r.get('status')}"
        for r in app["status"].get("resources", [])
        if r.get("status") != "Synced"
    ]
    assert not out, f"resources not Synced: {out}"


def expect_history(app: dict, path: str) -> list[dict]:
    entries = app["status"].get("history") or []
    assert entries, "the Application has no history"
    for entry in entries:
        assert len(entry.get("revision", "")) == 40, f"history entry without a commit SHA: {entry}"
        assert entry.get("deployedAt"), f"history entry without a time: {entry}"
        assert entry.get("source", {}).get("path") == path, f"history entry for another path: {entry}"
    current = app["status"]["sync"]["revision"]
    assert entries[-1]["revision"] == current, f"last history entry {entries[-1]['revision']} != {current}"
    return entries


def expect_source(app: dict, path: str, branch: str, repo_name: str) -> None:
    source = app["spec"]["source"]
    assert source["path"] == path, f"syncs path {source['path']}"
    assert source["targetRevision"] == branch, f"syncs {source['targetRevision']}"
    assert repo_name in source["repoURL"], f"syncs {source['repoURL']}"


def expect_automated(app: dict) -> None:
    automated = (app["spec"].get("syncPolicy") or {}).get("automated")
    assert automated is not None, "sync policy is not automated"
    assert automated.get("prune") and automated.get("selfHeal"), f"automated policy: {automated}"


def expect_sync_of(client: ArgoCDClient, app: str, revision: str, timeout: float, automated: bool) -> float:
    """Argo CD synced ``revision`` (its operation Succeeded); with ``automated``, no one asked it to."""

    def probe() -> waits.Check:
        status = client.application(app)["status"]
        op = status.get("operationState") or {}
        synced = op.get("syncResult", {}).get("revision")
        detail = f"last operation {op.get('phase')} at {synced and synced[:8]}, want {revision[:8]}"
        if synced != revision:
            return waits.pending(detail)
        if op.get("phase") in ("Failed", "Error"):
            return waits.failed(f"{detail}: {op.get('message')}")
        if op.get("phase") != "Succeeded":
            return waits.pending(detail)
        by = op.get("operation", {}).get("initiatedBy", {})
        if automated and not by.get("automated"):
            return waits.failed(f"{detail}: the sync was started by {by.get('username')}, not automatically")
        return waits.succeeded(detail)

    return waits.until(probe, timeout=timeout, interval=2, what=f"Argo CD syncs {revision[:8]}").seconds


def last_sync_automated_after(client: ArgoCDClient, app: str, after_epoch: float) -> None:
    import datetime

    op = client.application(app)["status"].get("operationState") or {}
    by = op.get("operation", {}).get("initiatedBy", {})
    assert by.get("automated"), f"last sync initiated by {by}"
    started = datetime.datetime.fromisoformat(op["startedAt"].replace("Z", "+00:00")).timestamp()
    assert started >= int(after_epoch) - 1, f"last sync started at {op['startedAt']}, before the change"


def expect_ready_endpoints(kube: Kube, namespace: str, service: str, port: int) -> None:
    svc = kube.core.read_namespaced_service(service, namespace)
    ports = [p.port for p in svc.spec.ports or []]
    assert port in ports, f"Service {service} exposes {ports}, not {port}"
    from kubernetes import client

    found = (
        client.DiscoveryV1Api(kube.api)
        .list_namespaced_endpoint_slice(namespace, label_selector=f"kubernetes.io/service-name={service}")
        .items
    )
    ready = [e for s in found for e in s.endpoints or [] if e.conditions and e.conditions.ready]
    assert ready, f"Service {service} has no ready endpoint"


def expect_no_bad_pods(kube: Kube, namespace: str) -> None:
    bad = []
    for pod in kube.core.list_namespaced_pod(namespace).items:
        waiting = [
            c.state.waiting.reason for c in pod.status.container_statuses or [] if c.state and c.state.waiting
        ]
        if pod.status.phase == "Pending" or "CrashLoopBackOff" in waiting:
            bad.append(f"{pod.metadata.name}: {pod.status.phase} {waiting}")
    assert not bad, f"pods in trouble: {bad}"


def expect_out_of_sync(client: ArgoCDClient, app: str, timeout: float) -> None:
    """Argo CD reports the Application OutOfSync within ``timeout`` (asked to refresh at every look)."""

    def probe() -> waits.Check:
        status = client.refresh(app)["status"]["sync"]["status"]
        return waits.succeeded(status) if status == "OutOfSync" else waits.pending(status)

    waits.until(probe, timeout=timeout, interval=2, what=f"Application {app} OutOfSync")


def expect_stays_out_of_sync(client: ArgoCDClient, app: str, seconds: float) -> None:
    """The Application becomes OutOfSync within 30 seconds (a rollback just ran) and stays so for
    ``seconds``: any other status fails at once."""

    def probe() -> waits.Check:
        status = client.refresh(app)["status"]["sync"]["status"]
        return waits.succeeded(status) if status == "OutOfSync" else waits.failed(f"{app} is {status}")

    waits.until(probe, timeout=30, interval=2, what=f"{app} OutOfSync after the rollback")
    waits.consistently(probe, duration=seconds, interval=2, what=f"{app} stays OutOfSync")


def expect_all_deployed(kube: Kube, namespace: str, rows: list[list[str]], timeout: float) -> None:
    """For each (Deployment, port) row: the rollout is complete and the Service of the same name has a
    ready endpoint on that port."""
    from boutique_suite.expectations import probes

    for deployment, port in rows:
        waits.until(
            probes.rollout_complete(kube, namespace, deployment),
            timeout=timeout,
            what=f"Deployment {deployment}",
        )
        expect_ready_endpoints(kube, namespace, deployment, int(port))


def utc_now() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC)


def expect_webhook_refresh(
    target: Target, kube: Kube, app: str, since: datetime.datetime, timeout: float = 30
) -> str:
    """Argo CD's server logs that gitops-repo's push webhook made it refresh ``app`` at or after ``since``
    (Argo CD's own words: "refreshing app '<app>' from webhook"); returns that log line."""
    from boutique_suite.context.sites import site_for

    site = site_for(target)
    wanted = f"refreshing app '{app}' from webhook"
    floor = since.replace(microsecond=0)

    def probe() -> waits.Check:
        window = int((utc_now() - floor).total_seconds()) + 5
        for line in site.argocd_server_log(kube, window).splitlines():
            entry = _json_line(line)
            if wanted in entry.get("msg", "") and _log_time(entry) >= floor:
                return waits.succeeded(line)
        return waits.pending(f"argocd-server has not logged {wanted!r} since {floor:%H:%M:%S}")

    return str(
        waits.until(probe, timeout=timeout, interval=1, what="the push webhook's refresh").check.detail
    )


def _json_line(line: str) -> dict:
    """One log line as {time, msg}: Argo CD logs JSON (the lab) or logfmt (install.yaml's default, text)."""
    try:
        entry = json.loads(line)
    except ValueError:
        found = _LOGFMT_TIME.search(line)
        return {"time": found.group(1), "msg": line} if found else {}
    return entry if isinstance(entry, dict) else {}


def _log_time(entry: dict) -> datetime.datetime:
    try:
        return datetime.datetime.fromisoformat(str(entry.get("time", "")))
    except ValueError:
        return datetime.datetime.min.replace(tzinfo=datetime.UTC)
