"""Phase 6 on-prem: Grafana's data sources and dashboards through its HTTP API, and whether each Prometheus
panel of a dashboard returns data (its queries run against Prometheus with the dashboard's variables)."""

from __future__ import annotations

import datetime
import re
import time
from dataclasses import dataclass, field
from typing import Any

import requests

from boutique_suite.clients.alerting import Prometheus
from boutique_suite.run.targets import Target
from provisioning.observability import dashboards

VARIABLE = re.compile(r"\$\{(\w+)(?::\w+)?\}|\$(\w+)|\[\[(\w+)\]\]")


@dataclass
class Grafana:
    url: str
    token: str = field(repr=False)  # never in a traceback or a log

    def get(self, path: str, **params: str) -> Any:
        answer = requests.get(
            f"{self.url.rstrip('/')}{path}",
            params=params,
            headers={"Authorization": f"Bearer {self.token}"},
            timeout=15,
        )
        assert answer.status_code == 200, f"Grafana {path}: HTTP {answer.status_code} {answer.text[:200]}"
        return answer.json()


def connect(target: Target) -> Grafana:
    monitoring = target.monitoring
    assert monitoring and monitoring.grafana_url, "the target file names no monitoring.grafana_url"
    return Grafana(monitoring.grafana_url, monitoring.grafana_token())


def expect_datasources_healthy(grafana: Grafana, *names: str) -> None:
    problems = []
    for name in names:
        uid = grafana.get(f"/api/datasources/name/{name}")["uid"]
        health = grafana.get(f"/api/datasources/uid/{uid}/health")
        if health.get("status") != "OK":
            problems.append(f"{name}: {health.get('message')}")
    assert not problems, "; ".join(problems)


def find_dashboards(grafana: Grafana, *titles: str) -> dict[str, str]:
    """title -> uid of each dashboard; a missing title fails."""
    found = {}
    for title in titles:
        hits = [h for h in grafana.get("/api/search", type="dash-db", query=title) if h.get("title") == title]
        assert hits, f"Grafana has no dashboard titled {title!r}"
        found[title] = hits[0]["uid"]
    return found


def expect_provisioned(grafana: Grafana, uids: dict[str, str]) -> None:
    loose = [
        t
        for t, uid in uids.items()
        if not grafana.get(f"/api/dashboards/uid/{uid}")["meta"].get("provisioned")
    ]
    assert not loose, f"dashboards not provisioned (made by hand in Grafana): {loose}"


def substituted(expr: str, values: dict[str, str]) -> str:
    """``expr`` as Grafana sends it: intervals as 5m, each variable as its current value ("All" as .*)."""
    expr = dashboards.INTERVAL_VARIABLES.sub("5m", expr)
    return VARIABLE.sub(lambda m: values.get(next(g for g in m.groups() if g), ".*"), expr)


def current_values(dashboard: dict[str, Any]) -> dict[str, str]:
    values = {}
    for var in dashboard.get("templating", {}).get("list", []):
        value = (var.get("current") or {}).get("value")
        value = value[0] if isinstance(value, list) and value else value
        values[var["name"]] = ".*" if value in (None, "", "$__all") else str(value)
    return values


def empty_panels(prom: Prometheus, dashboard: dict[str, Any], seconds: int) -> list[str]:
    """Titles of Prometheus panels none of whose queries returned a sample in the last ``seconds``."""
    values, now, empty = current_values(dashboard), time.time(), []
    for panel in dashboards.panels(dashboard):
        exprs = [t["expr"] for t in panel.get("targets") or [] if t.get("expr")]
        if not exprs:
            continue
        has_data = any(
            prom.api.custom_query_range(
                substituted(e, values), start_time=_dt(now - seconds), end_time=_dt(now), step="30s"
            )
            for e in exprs
        )
        if not has_data:
            empty.append(f"{dashboard.get('title')}: {panel.get('title')}")
    return empty


def _dt(seconds: float) -> datetime.datetime:
    return datetime.datetime.fromtimestamp(seconds, datetime.UTC)


def expect_panels_have_data(grafana: Grafana, prom: Prometheus, titles: list[str], seconds: int) -> None:
    uids = find_dashboards(grafana, *titles)
    empty = [
        p
        for uid in uids.values()
        for p in empty_panels(prom, grafana.get(f"/api/dashboards/uid/{uid}")["dashboard"], seconds)
    ]
    assert not empty, f"panels without data in the last {seconds} s: {empty}"


def expect_storefront_requests(prom: Prometheus, host: str, seconds: int) -> float:
    query = f'sum(increase(nginx_ingress_controller_requests{{host="{host}"}}[{seconds}s]))'
    result = prom.query(query)
    count = float(result[0]["value"][1]) if result else 0.0
    assert count > 0, f"no request for {host} reached ingress-nginx in the last {seconds} s"
    return count
