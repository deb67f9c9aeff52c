"""Where a load run hurt: Prometheus is asked, per Boutique service, for CPU against its request and limit,
CPU throttling, peak memory against its limit and restarts over the run's window (cAdvisor through the
kubelets, kube-state-metrics), and the services are ranked by their tightest headroom. Evidence for the
report, never an assertion: a service without samples is listed as such."""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Protocol

from loadtests.results import EndpointStats

# A pod's Deployment: its name without the ReplicaSet's and the pod's suffixes.
_SERVICE = 'label_replace({q}, "service", "$1", "pod", "(.+)-[a-z0-9]+-[a-z0-9]+")'
# Pod-level cgroups: cAdvisor has them on every runtime (the lab's kubelets see no container names).
_PODS = 'namespace="{ns}", pod!="", container=""'


class Queryable(Protocol):
    def query(self, promql: str) -> list[dict]: ...


@dataclass(frozen=True)
class ServiceUsage:
    """One service over the window. Ratios are of its busiest pod (1.0 = at the request or limit)."""

    service: str
    cpu_cores: float | None  # mean over the window, all pods of the service together
    cpu_of_request: float | None
    cpu_of_limit: float | None
    throttled_ratio: float | None  # throttled CFS periods / all periods
    memory_peak_bytes: float | None  # the largest pod working set seen
    memory_of_limit: float | None
    restarts: int

    @property
    def tightest(self) -> float:
        """The smallest headroom as a used fraction; -1 when nothing is known."""
        known = [v for v in (self.cpu_of_limit, self.memory_of_limit, self.throttled_ratio) if v is not None]
        return max(known, default=-1.0)


def _per_service(how: str, promql: str) -> str:
    return f"{how} by (service) ({_SERVICE.format(q=promql)})"


def _per_pod(promql: str) -> str:
    return f"sum by (namespace, pod) ({promql})"


def queries(namespace: str, window_s: int) -> dict[str, str]:
    """PromQL per column. Pods gone by the end of the window still count (ksm values over the window)."""
    sel, w = _PODS.format(ns=namespace), f"{max(window_s, 60)}s"
    ksm = f'namespace="{namespace}"'
    cpu = _per_pod(f"rate(container_cpu_usage_seconds_total{{{sel}}}[{w}])")
    request = _per_pod(f'max_over_time(kube_pod_container_resource_requests{{{ksm}, resource="cpu"}}[{w}])')
    limit = _per_pod(f'max_over_time(kube_pod_container_resource_limits{{{ksm}, resource="cpu"}}[{w}])')
    memory = _per_pod(f"max_over_time(container_memory_working_set_bytes{{{sel}}}[{w}])")
    memory_limit = _per_pod(
        f'max_over_time(kube_pod_container_resource_limits{{{ksm}, resource="memory"}}[{w}])'
    )
    throttled = f"increase(container_cpu_cfs_throttled_periods_total{{{sel}}}[{w}])"
    periods = f"increase(container_cpu_cfs_periods_total{{{sel}}}[{w}])"
    return {
        "cpu": _per_service("sum", cpu),
        "cpu_of_request": _per_service("max", f"{cpu} / {request}"),
        "cpu_of_limit": _per_service("max", f"{cpu} / {limit}"),
        "throttled": _per_service("max", f"{_per_pod(throttled)} / {_per_pod(periods)}"),
        "memory": _per_service("max", memory),
        "memory_of_limit": _per_service("max", f"{memory} / {memory_limit}"),
        "restarts": _per_service("sum", f"increase(kube_pod_container_status_restarts_total{{{ksm}}}[{w}])"),
    }


def _by_service(rows: list[dict]) -> dict[str, float]:
    found = {}
    for row in rows:
        value = float(row["value"][1])
        if "service" in row["metric"] and math.isfinite(value):
            found[row["metric"]["service"]] = value
    return found


def usage(prometheus: Queryable, namespace: str, window_s: int) -> list[ServiceUsage]:
    """Each service's usage over the last ``window_s`` seconds, the tightest headroom first."""
    got = {name: _by_service(prometheus.query(q)) for name, q in queries(namespace, window_s).items()}
    services = sorted(set().union(*(set(v) for v in got.values())))
    rows = [
        ServiceUsage(
            service=s,
            cpu_cores=got["cpu"].get(s),
            cpu_of_request=got["cpu_of_request"].get(s),
            cpu_of_limit=got["cpu_of_limit"].get(s),
            throttled_ratio=got["throttled"].get(s),
            memory_peak_bytes=got["memory"].get(s),
            memory_of_limit=got["memory_of_limit"].get(s),
            restarts=round(got["restarts"].get(s, 0)),
        )
        for s in services
    ]
    return sorted(rows, key=lambda r: -r.tightest)


def _pct(value: float | None) -> str:
    return "–" if value is None else f"{value:.0%}"


# The columns a headroom row must have, by the name a person reads.
MEASURED: dict[str, Callable[[ServiceUsage], float | None]] = {
    "CPU": lambda r: r.cpu_cores,
    "CPU of request": lambda r: r.cpu_of_request,
    "CPU of limit": lambda r: r.cpu_of_limit,
    "CPU throttling": lambda r: r.throttled_ratio,
    "memory working set": lambda r: r.memory_peak_bytes,
    "memory of limit": lambda r: r.memory_of_limit,
}
_WORST: dict[str, Callable[[ServiceUsage], float | None]] = {
    "least CPU headroom": lambda r: r.cpu_of_limit,
    "least memory headroom": lambda r: r.memory_of_limit,
    "most throttled": lambda r: r.throttled_ratio,
}


def worst(rows: list[ServiceUsage]) -> dict[str, ServiceUsage]:
    """The service at the top of each headroom column (a column nobody has a value for is left out)."""
    found = {}
    for what, key in _WORST.items():
        known = [r for r in rows if key(r) is not None]
        if known:
            found[what] = max(known, key=lambda r, key=key: key(r))  # type: ignore[arg-type, return-value]
    return found


def slowest_route(endpoints: Mapping[str, EndpointStats]) -> EndpointStats | None:
    """The route with the highest p95 among those that were answered."""
    answered = [e for e in endpoints.values() if e.requests > e.failures]
    return max(answered, key=lambda e: e.p95_ms, default=None)


def table(rows: list[ServiceUsage], endpoints: Mapping[str, EndpointStats] | None = None) -> str:
    """A Markdown table, the tightest headroom first, then the services at the top of each column and
    the slowest route (by p95, as the shoppers measured it)."""
    lines = [
        "| service | CPU (m) | of request | of limit | throttled | memory peak (MiB) | of limit | restarts |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        cpu = "–" if r.cpu_cores is None else f"{r.cpu_cores * 1000:.0f}"
        mem = "–" if r.memory_peak_bytes is None else f"{r.memory_peak_bytes / 2**20:.0f}"
        lines.append(
            f"| {r.service} | {cpu} | {_pct(r.cpu_of_request)} | {_pct(r.cpu_of_limit)} | "
            f"{_pct(r.throttled_ratio)} | {mem} | {_pct(r.memory_of_limit)} | {r.restarts} |"
        )
    if not rows:
        lines.append("| (Prometheus has no container samples for this window) | | | | | | | |")
    for what, row in worst(rows).items():
        lines.append(f"\n{what}: **{row.service}** ({_pct(_WORST[what](row))})")
    slowest = slowest_route(endpoints or {})
    if slowest is not None:
        lines.append(f"\nslowest route: **{slowest.name}** (p95 {slowest.p95_ms:.0f} ms)")
    return "\n".join(lines)


def expect_measured(rows: list[ServiceUsage], services: Iterable[str]) -> None:
    """Every one of ``services`` has a value in every column of MEASURED."""
    by_name = {r.service: r for r in rows}
    gaps = {
        service: [
            name
            for name, column in MEASURED.items()
            if service not in by_name or column(by_name[service]) is None
        ]
        for service in services
    }
    gaps = {service: missing for service, missing in gaps.items() if missing}
    assert not gaps, f"Prometheus has no samples over the run for: {gaps}"


def expect_named(rows: list[ServiceUsage], endpoints: Mapping[str, EndpointStats]) -> dict[str, str]:
    """The report can name the least CPU headroom, the least memory headroom and the slowest route."""
    named = {what: row.service for what, row in worst(rows).items()}
    slowest = slowest_route(endpoints)
    if slowest is not None:
        named["slowest route"] = slowest.name
    missing = [w for w in ("least CPU headroom", "least memory headroom", "slowest route") if w not in named]
    assert not missing, f"the report cannot name the {', '.join(missing)}: no values for them over the run"
    return named


def expect_at_most(rows: list[ServiceUsage], column: str, ceiling: float) -> None:
    """No service's busiest pod goes past ``ceiling`` in ``column`` (a key of MEASURED)."""
    value = MEASURED[column]
    over = {r.service: f"{value(r):.0%}" for r in rows if (value(r) or 0) > ceiling}
    assert not over, f"{column} above {ceiling:.0%} over the run: {over}"
