"""Phase 6 on-prem: a pod's log line reaches Loki through Promtail (Loki's HTTP query API)."""

from __future__ import annotations

import time

import requests
from kubernetes import client

from boutique_suite.clients.kube import PROBE_IMAGE, RESTRICTED, Kube, create_pod_undoably
from boutique_suite.run import waits
from boutique_suite.run.targets import Target
from boutique_suite.run.undo import UndoStack


def write_log_line(kube: Kube, namespace: str, undo: UndoStack) -> str:
    """A pod carrying the run labels that prints one line holding the run id; removed afterwards."""
    name = f"log-probe-{kube.run_id}".lower()
    line = f"boutique-suite log probe {kube.run_id}"
    small = {"cpu": "10m", "memory": "16Mi"}
    container = client.V1Container(
        name="log-probe",
        image=PROBE_IMAGE,
        command=["sh", "-c", f"echo '{line}'; sleep 120"],
        resources=client.V1ResourceRequirements(requests=small, limits=small),
        security_context=RESTRICTED,
    )
    body = client.V1Pod(
        metadata=client.V1ObjectMeta(name=name, labels=kube.labels({"app": "log-probe"})),
        spec=client.V1PodSpec(
            containers=[container], restart_policy="Never", automount_service_account_token=False
        ),
    )
    create_pod_undoably(kube, namespace, body, undo)
    return line


def loki_has(url: str, namespace: str, line: str, since: float) -> waits.Probe:
    query = f'{{namespace="{namespace}"}} |= "{line}"'

    def probe() -> waits.Check:
        try:
            answer = requests.get(
                f"{url.rstrip('/')}/loki/api/v1/query_range",
                params={"query": query, "start": str(int(since * 1e9)), "limit": "10"},
                timeout=10,
            )
        except requests.RequestException as exc:
            return waits.pending(f"Loki: {type(exc).__name__}")
        if answer.status_code != 200:
            return waits.failed(f"Loki answered {answer.status_code}: {answer.text[:200]}")
        streams = answer.json()["data"]["result"]
        found = [v[1] for s in streams for v in s.get("values", []) if line in v[1]]
        return (
            waits.succeeded(f"Loki returned {found[0]!r}")
            if found
            else waits.pending(f"no line yet for {query}")
        )

    return probe


def expect_line_in_loki(target: Target, namespace: str, line: str, seconds: int, since: float) -> float:
    monitoring = target.monitoring
    assert monitoring and monitoring.loki_url, "the target file names no monitoring.loki_url"
    waits.until(
        loki_has(monitoring.loki_url, namespace, line, since), timeout=seconds, what="the line in Loki"
    )
    return time.time() - since
