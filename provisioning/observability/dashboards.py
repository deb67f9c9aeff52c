"""Grafana dashboards as code: load, list their queries, and validate them.

A dashboard is valid when its JSON model has a uid, a title and panels with unique ids, every datasource it
names is one Grafana provisions (gitops-repo's platform/values/kube-prometheus-stack.yaml), and every PromQL
query parses; the queries are parsed by promtool, embedded as alert rules in a temporary rule file.

    python -m provisioning.observability.dashboards   # validate every dashboard
"""

from __future__ import annotations

import json
import re
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from provisioning.observability import HERE, VALUES
from provisioning.observability.tools import run

DASHBOARDS_DIR = HERE / "dashboards"
STACK_VALUES = VALUES / "kube-prometheus-stack.yaml"
# Grafana fills these in before a query reaches Prometheus; a duration keeps the query parseable.
INTERVAL_VARIABLES = re.compile(
    r"\$__(rate_interval|interval|range)\b|\$\{__(rate_interval|interval|range)\}"
)
OTHER_VARIABLES = re.compile(r"\$\{\w+(:\w+)?\}|\$\w+|\[\[\w+\]\]")
LABEL_VALUES = re.compile(r"^\s*(label_values|query_result)\((.*)\)\s*$", re.DOTALL)


@dataclass(frozen=True)
class Query:
    where: str  # e.g. "boutique-overview.json panel 3 target B"
    datasource: dict[str, Any] | None
    expr: str


def load(directory: Path = DASHBOARDS_DIR) -> dict[Path, dict[str, Any]]:
    return {path: json.loads(path.read_text()) for path in sorted(directory.glob("*.json"))}


def provisioned_datasources(values_path: Path = STACK_VALUES) -> dict[str, str]:
    """uid -> type of the datasources kube-prometheus-stack's Grafana provisions."""
    grafana = yaml.safe_load(values_path.read_text())["grafana"]
    found = {grafana["sidecar"]["datasources"]["uid"]: "prometheus"}
    found.update({ds["uid"]: ds["type"] for ds in grafana.get("additionalDataSources", [])})
    return found


def panels(dashboard: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """Every panel, including those nested in collapsed rows."""
    for panel in dashboard.get("panels", []):
        yield panel
        yield from panel.get("panels", [])


def queries(name: str, dashboard: dict[str, Any]) -> Iterator[Query]:
    for var in dashboard.get("templating", {}).get("list", []):
        if var.get("type") == "query":
            query = var.get("query")
            text = query.get("query", "") if isinstance(query, dict) else str(query or "")
            yield Query(f"{name} variable {var.get('name')}", var.get("datasource"), variable_promql(text))
    for panel in panels(dashboard):
        for target in panel.get("targets") or []:
            ds = target.get("datasource") or panel.get("datasource")
            yield Query(
                f"{name} panel {panel.get('id')} target {target.get('refId')}", ds, target.get("expr", "")
            )


def variable_promql(query: str) -> str:
    """The PromQL inside a variable query: label_values(<expr>, label) or query_result(<expr>)."""
    m = LABEL_VALUES.match(query)
    if m is None:
        return query
    func, args = m.groups()
    if func == "label_values":
        expr, _, _label = args.rpartition(",")
        return expr.strip() or "up"  # label_values(label) has no expression
    return args


def substitute_variables(expr: str) -> str:
    return OTHER_VARIABLES.sub("placeholder", INTERVAL_VARIABLES.sub("5m", expr))


def structure_problems(name: str, dashboard: dict[str, Any], datasources: dict[str, str]) -> list[str]:
    problems = []
    for key in ("uid", "title", "schemaVersion", "panels"):
        if key not in dashboard:
            problems.append(f"{name}: missing {key}")
    ids = [p.get("id") for p in panels(dashboard)]
    problems += [
        f"{name}: panel id {i} used {ids.count(i)} times"
        for i in sorted(set(ids), key=str)
        if ids.count(i) > 1 or i is None
    ]
    for panel in panels(dashboard):
        if panel.get("type") != "row" and "gridPos" not in panel:
            problems.append(f"{name} panel {panel.get('id')}: no gridPos")
        problems += reading_problems(name, panel)
    for query in queries(name, dashboard):
        ds = query.datasource
        if not isinstance(ds, dict) or ds.get("uid") not in datasources:
            problems.append(
                f"{query.where}: datasource {ds!r} is not a provisioned uid {sorted(datasources)}"
            )
        elif ds.get("type") != datasources[ds["uid"]]:
            expected = datasources[ds["uid"]]
            problems.append(
                f"{query.where}: datasource {ds['uid']} has type {expected}, not {ds.get('type')}"
            )
        if not query.expr.strip():
            problems.append(f"{query.where}: empty query")
    return problems


READ_AGAINST_LIMITS = ("percentunit", "s")  # ratios and latencies: a reader needs to see where "bad" starts


def reading_problems(name: str, panel: dict[str, Any]) -> list[str]:
    """A number without its unit, or a ratio, latency or stat without thresholds, cannot be read at a
    glance: every timeseries and stat states its unit; every stat, and every timeseries of a ratio or a
    latency, its thresholds (ratios and latencies at least one above the base, drawn as a line)."""
    if panel.get("type") not in ("timeseries", "stat"):
        return []
    where = f"{name} panel {panel.get('id')} ({panel.get('title')})"
    defaults = panel.get("fieldConfig", {}).get("defaults", {})
    unit = defaults.get("unit")
    if not unit:
        return [f"{where}: no unit"]
    steps = (defaults.get("thresholds") or {}).get("steps") or []
    needs_limit = unit in READ_AGAINST_LIMITS
    if panel["type"] == "stat" and not steps:
        return [f"{where}: no thresholds"]
    if needs_limit and len(steps) < 2:
        return [f"{where}: a {unit} panel needs a threshold above the base"]
    style = defaults.get("custom", {}).get("thresholdsStyle", {}).get("mode", "off")
    if needs_limit and panel["type"] == "timeseries" and style == "off":
        return [f"{where}: thresholds are not drawn (custom.thresholdsStyle.mode is off)"]
    return []


def promql_problems(all_queries: list[Query], workdir: Path) -> list[str]:
    """Parse every Prometheus query with promtool; one rule group per query so errors name the query."""
    promql = [
        q for q in all_queries if isinstance(q.datasource, dict) and q.datasource.get("type") == "prometheus"
    ]
    if not promql:
        return []
    groups = [
        # The index keeps group names unique when a planted duplicate panel id repeats a location.
        {
            "name": f"{i}: {q.where}",
            "rules": [{"alert": "DashboardQuery", "expr": substitute_variables(q.expr)}],
        }
        for i, q in enumerate(promql)
    ]
    rule_file = workdir / "dashboard-queries.rules.yaml"
    rule_file.write_text(yaml.safe_dump({"groups": groups}, sort_keys=False))
    proc = run("promtool", "check", "rules", str(rule_file))
    if proc.returncode == 0:
        return []
    return [line.strip() for line in (proc.stdout + proc.stderr).splitlines() if "group" in line] or [
        proc.stdout + proc.stderr
    ]


def validate(directory: Path = DASHBOARDS_DIR, values_path: Path = STACK_VALUES) -> list[str]:
    datasources = provisioned_datasources(values_path)
    problems: list[str] = []
    all_queries: list[Query] = []
    seen: dict[str, str] = {}
    for path, dashboard in load(directory).items():
        problems += structure_problems(path.name, dashboard, datasources)
        all_queries += queries(path.name, dashboard)
        for key in ("uid", "title"):
            value = dashboard.get(key)
            if value in seen:
                problems.append(f"{path.name}: {key} {value!r} already used by {seen[value]}")
            seen[value] = path.name
    with tempfile.TemporaryDirectory() as tmp:
        problems += promql_problems(all_queries, Path(tmp))
    return problems


if __name__ == "__main__":
    found = validate()
    print("\n".join(found) or "all dashboards valid")
    sys.exit(1 if found else 0)
