"""Reading and waiting on Prometheus and Alertmanager through their HTTP APIs (the same on the lab and
on-prem): scrape targets, query results, alert states, the live Alertmanager config, test alerts."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import requests
import yaml
from prometheus_api_client import PrometheusConnect

from boutique_suite.clients.kube import Kube
from boutique_suite.run import waits
from boutique_suite.run.targets import Target
from boutique_suite.run.touches import Touches


class MonitoringUnavailable(Exception):
    """Prometheus or Alertmanager cannot be used; the message names the URL and the fix."""


@dataclass
class Prometheus:
    url: str
    api: PrometheusConnect = field(init=False)

    def __post_init__(self) -> None:
        self.api = PrometheusConnect(url=self.url, disable_ssl=False)

    def _get(self, path: str) -> Any:
        try:
            resp = requests.get(f"{self.url}{path}", timeout=10)
        except requests.RequestException as exc:
            raise MonitoringUnavailable(f"cannot reach Prometheus at {self.url}: {exc}") from None
        resp.raise_for_status()
        return resp.json()["data"]

    def query(self, promql: str) -> list[dict[str, Any]]:
        return self.api.custom_query(query=promql)

    def targets(self) -> list[dict[str, Any]]:
        return self._get("/api/v1/targets?state=active")["activeTargets"]

    def alerts(self) -> list[dict[str, Any]]:
        return self._get("/api/v1/alerts")["alerts"]

    def metric_names(self) -> set[str]:
        """Every metric name Prometheus holds series of."""
        return set(self._get("/api/v1/label/__name__/values"))

    def rule_names(self) -> set[str]:
        return set(self.rules())

    def rules(self) -> dict[str, dict[str, Any]]:
        """{rule name: the rule as Prometheus loaded it (query, duration, labels, annotations, ...)}."""
        return {r["name"]: r for g in self._get("/api/v1/rules")["groups"] for r in g["rules"]}


@dataclass
class Alertmanager:
    url: str

    def _request(self, method: str, path: str, **kwargs: Any) -> Any:
        try:
            resp = requests.request(method, f"{self.url}{path}", timeout=10, **kwargs)
        except requests.RequestException as exc:
            raise MonitoringUnavailable(f"cannot reach Alertmanager at {self.url}: {exc}") from None
        if resp.status_code >= 300:
            raise AssertionError(f"Alertmanager {method} {path}: {resp.status_code} {resp.text[:300]}")
        return resp.json() if resp.content else None

    def config(self) -> dict[str, Any]:
        """The running config as Alertmanager reports it (secrets it knows of shown as <secret>)."""
        return yaml.safe_load(self._request("GET", "/api/v2/status")["config"]["original"])

    def alerts(self, alertname: str) -> list[dict[str, Any]]:
        return self._request("GET", "/api/v2/alerts", params={"filter": f'alertname="{alertname}"'})

    def post(self, labels: dict[str, str], annotations: dict[str, str], ends_in: float = 300) -> None:
        """Post one alert as Prometheus does; ``ends_in`` <= 0 resolves it."""
        ends = datetime.now(UTC) + timedelta(seconds=ends_in)
        body = [{"labels": labels, "annotations": annotations, "endsAt": ends.isoformat()}]
        self._request("POST", "/api/v2/alerts", json=body)


def connect(target: Target) -> tuple[Prometheus, Alertmanager]:
    if target.monitoring is None:
        raise MonitoringUnavailable(f"target {target.name} has no monitoring section")
    return Prometheus(target.monitoring.prometheus_url), Alertmanager(target.monitoring.alertmanager_url)


# --- probes ------------------------------------------------------------------------------------


def target_up(prom: Prometheus, job: str) -> waits.Probe:
    def probe() -> waits.Check:
        targets = prom.targets()
        found = [t for t in targets if t["labels"].get("job") == job]
        if not targets:  # just started or reloaded: scrape pools not synced yet
            return waits.pending("Prometheus lists no scrape target yet")
        if not found:
            return waits.failed(f"Prometheus has no scrape target of job {job!r}")
        down = [
            f"{t['scrapeUrl']}: {t['health']} {t.get('lastError', '')}" for t in found if t["health"] != "up"
        ]
        return waits.pending("; ".join(down)) if down else waits.succeeded(f"{len(found)} target(s) up")

    return probe


def all_targets_up(prom: Prometheus) -> waits.Probe:
    def probe() -> waits.Check:
        targets = prom.targets()
        down = [
            f"{t['labels'].get('job')} ({t['scrapeUrl']}): {t['health']} {t.get('lastError', '')}".strip()
            for t in targets
            if t["health"] != "up"
        ]
        if down:
            return waits.pending("down: " + "; ".join(down))
        return waits.succeeded(f"all {len(targets)} targets up", sorted(t["labels"]["job"] for t in targets))

    return probe


def series_cover(prom: Prometheus, promql: str, label: str, expected: set[str]) -> waits.Probe:
    """Succeeds when ``promql`` returns a series for every value of ``label`` in ``expected``."""

    def probe() -> waits.Check:
        seen = {r["metric"].get(label, "") for r in prom.query(promql)}
        missing = sorted(expected - seen)
        if missing:
            return waits.pending(f"{promql}: no series yet for {label} in {missing}")
        return waits.succeeded(f"{len(expected)} {label}s have series", seen)

    return probe


def value_above(prom: Prometheus, promql: str, threshold: float) -> waits.Probe:
    def probe() -> waits.Check:
        values = [float(r["value"][1]) for r in prom.query(promql)]
        if values and max(values) > threshold:
            return waits.succeeded(f"{promql} = {max(values):.3f} > {threshold}", max(values))
        return waits.pending(f"{promql} = {values or 'no data'} (want > {threshold})")

    return probe


def alert_firing(prom: Prometheus, alertname: str, labels: dict[str, str]) -> waits.Probe:
    """Succeeds when Prometheus has ``alertname`` firing with labels matching ``labels`` (a value
    ending in '*' matches by prefix); the value is the alert as Prometheus reports it."""

    def matches(alert: dict[str, Any]) -> bool:
        have = alert["labels"]
        return have.get("alertname") == alertname and all(
            have.get(k, "").startswith(v[:-1]) if v.endswith("*") else have.get(k) == v
            for k, v in labels.items()
        )

    def probe() -> waits.Check:
        mine = [a for a in prom.alerts() if matches(a)]
        firing = [a for a in mine if a["state"] == "firing"]
        if firing:
            return waits.succeeded(f"{alertname} firing since {firing[0]['activeAt']}", firing[0])
        if mine:
            return waits.pending(f"{alertname} {mine[0]['state']} since {mine[0]['activeAt']}")
        return waits.pending(f"{alertname} not active for {labels}")

    return probe


@dataclass
class Fired:
    """What an alert scenario measured: when the alert was seen firing, when Slack had the message."""

    alertname: str
    seen_firing_at: float = 0.0
    alert: dict[str, Any] = field(default_factory=dict)
    since: float = field(default_factory=time.time)


# --- checks the scenarios make ---------------------------------------------------------------------


def requested_share(resource: str, node: str) -> str:
    """PromQL: the share of ``node``'s allocatable ``resource`` that Pending/Running pods request (the
    BoutiqueNode*Shortage rules' expression, for one node)."""
    unit = "core" if resource == "cpu" else "byte"
    return (
        f'sum(kube_pod_container_resource_requests{{resource="{resource}", unit="{unit}", node="{node}"}}'
        ' and on (namespace, pod) (kube_pod_status_phase{phase=~"Pending|Running"} == 1))'
        f' / sum(kube_node_status_allocatable{{resource="{resource}", unit="{unit}", node="{node}"}})'
    )


def expect_deployments(kube: Kube, namespace: str, count: int) -> set[str]:
    names = {d.metadata.name for d in kube.apps.list_namespaced_deployment(namespace).items}
    assert len(names) == count, f"{namespace} has {len(names)} Deployments, expected {count}: {sorted(names)}"
    return names


def expect_request_series(prom: Prometheus, kube: Kube, namespace: str, timeout: float) -> None:
    """kube_pod_container_resource_requests has a cpu and a memory series for every container of
    every pod in ``namespace``."""
    pods = kube.core.list_namespaced_pod(namespace).items
    expected = {
        f"{p.metadata.name}/{c.name}" for p in pods if p.status.phase == "Running" for c in p.spec.containers
    }
    assert expected, f"no running pod in {namespace}"

    def probe() -> waits.Check:
        missing = []
        for resource in ("cpu", "memory"):
            query = f'kube_pod_container_resource_requests{{namespace="{namespace}", resource="{resource}"}}'
            seen = {f"{r['metric'].get('pod')}/{r['metric'].get('container')}" for r in prom.query(query)}
            missing += [f"{resource} of {m}" for m in sorted(expected - seen)]
        if missing:
            return waits.pending(f"{len(missing)} request series missing: {', '.join(missing[:5])}")
        return waits.succeeded(f"cpu and memory request series for {len(expected)} containers")

    waits.until(probe, timeout=timeout, interval=2, what=f"request series for every container in {namespace}")


def post_test_alert(am: Alertmanager, name: str, run_id: str, namespace: str) -> dict[str, str]:
    labels = {"alertname": name, "severity": "warning", "namespace": namespace, "run_id": run_id}
    am.post(labels, {"summary": f"Test alert of suite run {run_id}", "description": "Posted by the suite."})
    return labels


def expect_slack_message(
    target: Target, channel: str, alarm: dict[str, Any], needles: tuple[str, ...], seconds: float
) -> float:
    """Wait for a message with every needle, sent after ``alarm['since']``, at most ``seconds`` after
    ``alarm['fired_at']``; return that latency (the message's Slack timestamp minus fired_at)."""
    from boutique_suite.clients import slack

    budget = seconds - (time.time() - alarm["fired_at"])
    found = slack.wait_for_message(
        slack.Channel.open(target, channel), alarm["since"], needles, max(budget, 1)
    )
    alarm["message"] = found["message"]  # the screen of the alert shows this one
    return float(found["message"]["ts"]) - alarm["fired_at"]


def all_deployments_available(kube: Kube, namespace: str) -> waits.Probe:
    def probe() -> waits.Check:
        deployments = kube.apps.list_namespaced_deployment(namespace).items
        short = [
            f"{d.metadata.name} {d.status.available_replicas or 0}/{d.spec.replicas}"
            for d in deployments
            if (d.status.available_replicas or 0) < (d.spec.replicas or 0)
        ]
        if not deployments:
            return waits.failed(f"no Deployment in {namespace}")
        if short:
            return waits.pending("not all available: " + ", ".join(short))
        return waits.succeeded(f"all {len(deployments)} Deployments available")

    return probe


EXPORTER_TOUCHES = {
    "node_": Touches.hosts,  # node-exporter runs on the target's hosts
    "nginx_ingress_controller_": Touches.ingress,
}


def expect_named_metrics_have_series(
    prom: Prometheus, target: Target, named: dict[str, list[str]]
) -> dict[str, list[str]]:
    """Every metric the alert rules and dashboards name (``named``: {metric: where}) has series, except
    those of an exporter the target does not run; returns those as {the target's reason: metrics}."""
    have = prom.metric_names()
    missing: list[str] = []
    excused: dict[str, list[str]] = {}
    for metric, where in sorted(named.items()):
        touch = next((t for prefix, t in EXPORTER_TOUCHES.items() if metric.startswith(prefix)), None)
        if touch is not None and not target.provides(touch):
            excused.setdefault(target.provision(touch).why, []).append(metric)
        elif metric not in have:
            missing.append(f"{metric} (used by {', '.join(sorted(set(where))[:3])})")
    assert not missing, f"no series in Prometheus for {len(missing)} metric(s) the platform names: {missing}"
    return excused


def excused_text(excused: dict[str, list[str]]) -> str:
    """expect_named_metrics_have_series' excused metrics as one line: "<metrics>: <why>; ..."."""
    return "; ".join(f"{', '.join(m)}: {why}" for why, m in excused.items())


def wait_alert_firing(prom: Prometheus, alertname: str, labels: dict[str, str], seconds: float) -> Any:
    """Wait until ``alertname`` fires with ``labels``; the firing alert."""
    waited = waits.until(
        alert_firing(prom, alertname, labels), timeout=seconds, interval=2, what=f"{alertname} firing"
    )
    return waited.check.value


def firing_since(prom: Prometheus, alert: dict[str, Any]) -> float:
    """When Prometheus turned ``alert`` firing (an epoch): active since ``activeAt``, firing once its rule's
    ``for`` had passed. The moment Prometheus's own clock gives, not when a poll happened to see it."""
    active = datetime.fromisoformat(alert["activeAt"]).timestamp()
    rule = prom.rules().get(alert["labels"]["alertname"], {})
    return active + float(rule.get("duration", 0))


def after_revert(alarm: dict[str, Any]) -> dict[str, Any]:
    """The alarm as seen from the fault's revert: messages count from ``removed_at``."""
    return {**alarm, "since": alarm["removed_at"], "fired_at": alarm["removed_at"]}


def expect_resolved_message(
    target: Target, channel: str, alarm: dict[str, Any], alert: str, seconds: float
) -> float:
    """A RESOLVED message naming ``alert`` and the alarm's subject, at most ``seconds`` after the fault was
    reverted; its latency from the revert."""
    needles = ("RESOLVED", alert, alarm["subject"])
    return expect_slack_message(target, channel, after_revert(alarm), needles, seconds)
