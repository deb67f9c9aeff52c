"""Locust load against the storefront, as the scenarios drive it: the shopper journey of loadtests/ runs in
this process (Locust as a library, on gevent) against the frontend behind a LoadBalancer address from the
target's pool, while the scenario waits on the cluster; the result is read while it runs and attached when
it stops. The HPA-scaled Deployments' replicas are sampled the whole time (autoscaling.ReplicaWatch), so
"never more than N" covers every second of the run."""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from pathlib import Path

from boutique_suite.clients.kube import Kube
from boutique_suite.expectations import autoscaling, gateway
from boutique_suite.reporting import bottleneck, charts, evidence
from boutique_suite.run import waits
from boutique_suite.run.targets import Target
from boutique_suite.run.touches import Touches
from boutique_suite.run.undo import UndoStack
from loadtests.locustfile import ENDPOINTS
from loadtests.results import LoadResult
from loadtests.runner import LoadRun, start_load

MAX_FAILURE_RATIO = 0.01
DEFAULT_SPAWN_RATE = 5  # users started per second where a step does not say


@dataclass(frozen=True)
class Storefront:
    """Where the shoppers send their requests: a URL and, behind an ingress, the host name it routes."""

    url: str
    virtual_host: str | None = None


def storefront(
    kube: Kube,
    target: Target,
    namespace: str,
    undo: UndoStack,
    timeout: float,
    service: str = gateway.TEST_SERVICE,
) -> Storefront:
    """Where real shoppers arrive: ingress-nginx's VIP with the host of the frontend's Ingress where the
    target runs ingress-nginx; elsewhere a test LoadBalancer Service in front of the frontend's pods (its
    address from the target's MetalLB pool, deleted on undo). Returned once the storefront answers there."""
    if target.provides(Touches.ingress):
        host = gateway.storefront_host(kube, namespace)
        vip = gateway.gateway_of(target).ingress_vip
        gateway.expect_storefront_at(vip, timeout, virtual_host=host)
        return Storefront(f"http://{vip}", host)
    gateway.create_frontend_loadbalancer(kube, target, namespace, undo, service)
    return Storefront(f"http://{gateway.storefront_behind(kube, target, namespace, timeout, service)}")


@dataclass
class LoadSession:
    """A Locust run the scenario started: its URL, when it started, and the replica watches beside it."""

    run: LoadRun
    entry: Storefront
    started_mono: float
    watches: dict[str, autoscaling.ReplicaWatch] = field(default_factory=dict)
    stopped_mono: float | None = None
    recovered_at: float | None = None  # epoch: requests succeeded again after a fault
    result: LoadResult | None = None
    headroom: Headroom | None = None

    def snapshot(self) -> LoadResult:
        return self.result or self.run.snapshot()

    def run_for(self, seconds: float) -> LoadSession:
        self.run.wait(seconds)
        return self

    def stop(self) -> LoadResult:
        """Stop the shoppers (once) and attach the result: per-endpoint table, failures, the series."""
        if self.result is None:
            self.result = self.run.stop()
            self.stopped_mono = time.monotonic()
            for watch in self.watches.values():
                watch.stop()
                evidence.attach_text(f"replicas of {watch.deployment} (CSV)", watch.csv())
            attach_result(self.result)
            replicas = {name: [(s.at, s.replicas) for s in w.samples] for name, w in self.watches.items()}
            chart = charts.load_chart(self.result, replicas, report_file(self.result, "locust", "png"))
            evidence.attach_png("Locust: requests/s, p95 and replicas over time", chart)
        return self.result


@dataclass
class Shoppers:
    """Holds the scenario's Locust run (one at most), against the storefront in ``namespace``."""

    kube: Kube | None = None
    target: Target | None = None
    namespace: str = ""
    undo: UndoStack | None = None
    session: LoadSession | None = None

    def start(self, users: int, spawn_rate: float = DEFAULT_SPAWN_RATE) -> LoadSession:
        assert self.kube and self.target and self.undo, "Shoppers needs a cluster, a target and an undo stack"
        return start_shoppers(self, self.kube, self.target, self.namespace, self.undo, users, spawn_rate)

    @property
    def running(self) -> LoadSession:
        assert self.session is not None, "no Locust run was started in this scenario"
        return self.session

    def stop(self) -> None:
        if self.session is not None:
            self.session.stop()


def start_shoppers(
    shoppers: Shoppers,
    kube: Kube,
    target: Target,
    namespace: str,
    undo: UndoStack,
    users: int,
    spawn_rate: float,
) -> LoadSession:
    """Start ``users`` Locust shoppers against the storefront in ``namespace``, and a replica watch on
    every Deployment an HPA scales there (from this moment, so "never more than" misses nothing)."""
    assert shoppers.session is None, "Locust is already running in this scenario"
    entry = storefront(kube, target, namespace, undo, target.timeouts.assertion)
    scaled = [
        h.spec.scale_target_ref.name
        for h in kube.autoscaling.list_namespaced_horizontal_pod_autoscaler(namespace).items
        if h.spec.scale_target_ref.kind == "Deployment"
    ]
    watches = {name: autoscaling.ReplicaWatch(kube, namespace, name).start() for name in scaled}
    run = start_load(entry.url, users=users, spawn_rate=spawn_rate, virtual_host=entry.virtual_host)
    shoppers.session = LoadSession(run, entry, time.monotonic())
    shoppers.session.watches.update(watches)
    return shoppers.session


def expect_all_shopping(session: LoadSession, users: int, timeout: float) -> None:
    """All ``users`` are spawned and requests are coming back."""

    def probe() -> waits.Check:
        running, answered = session.run.runner.user_count, session.snapshot().requests
        detail = f"{running} of {users} users running, {answered} requests answered"
        return waits.succeeded(detail) if running >= users and answered else waits.pending(detail)

    waits.until(probe, timeout=timeout, interval=0.5, what=f"{users} Locust users shopping")


def traffic_recovered(session: LoadSession, since: float) -> waits.Probe:
    """Succeeds with the end (epoch) of the first whole second after ``since`` in which Locust's requests
    were answered, none failed, and every endpoint that failed in the last failing second has answered
    since: the shoppers' view that a Service routes to its new pods again (the kubelet says Ready a moment
    before kube-proxy's rules and the callers' reconnects follow). A clean second that only set the
    currency says nothing about the cart."""

    def probe() -> waits.Check:
        unproven: set[str] = set()
        failed = 0
        for second in session.snapshot().series:
            if second.failures:
                unproven = set(second.failures_by_endpoint)
                failed += second.failures if second.started_at >= since else 0
                continue
            unproven -= {route for route, _ in second.timings_ms}
            if second.started_at >= since and second.requests and not unproven:
                return waits.succeeded(f"answered without failure at {second.at:.0f}", second.at)
        waiting = f", not yet answered again: {sorted(unproven)}" if unproven else ""
        return waits.pending(f"{failed} failed requests since the wait began{waiting}")

    return probe


def expect_traffic_recovered(session: LoadSession, timeout: float) -> float:
    """Wait until the shoppers' requests succeed again; the window of later checks starts there. Returns
    the seconds it took."""
    since = time.time()
    recovered = waits.until(
        traffic_recovered(session, since), timeout=timeout, interval=0.5, what="Locust's requests recovered"
    ).check.value
    assert isinstance(recovered, float)
    session.recovered_at = recovered
    return recovered - since


def expect_few_failures_for(session: LoadSession, seconds: float) -> None:
    """Fewer than 1% of the requests fail in the ``seconds`` after the traffic recovered (after now, when no
    recovery was awaited)."""
    start = session.recovered_at or time.time()
    session.run_for(start + seconds - time.time())
    expect_few_failures(session.snapshot(), start, start + seconds)


def expect_hpa_scaled(
    kube: Kube, namespace: str, session: LoadSession, deployment: str, replicas: int, within: float, out: bool
) -> float:
    """Out: the HPA wants at least ``replicas`` and they are available ``within`` seconds of the load's
    start. In: exactly ``replicas`` ``within`` seconds of its stop. Seconds from that start or stop."""
    if out:
        since = session.started_mono
    else:
        assert session.stopped_mono is not None, "Locust is still running: stop it before waiting to scale in"
        since = session.stopped_mono
    at_least, exactly = (replicas, None) if out else (None, replicas)
    left = within - (time.monotonic() - since)
    autoscaling.expect_scaled(kube, namespace, deployment, at_least, exactly, max(left, 1))
    return time.monotonic() - since


def report_file(result: LoadResult, kind: str, suffix: str) -> Path:
    """``reports/load/<kind>-<when the run started>.<suffix>``: one file of each kind per run."""
    stamp = time.strftime("%Y%m%d-%H%M%S", time.localtime(result.started_at))
    return evidence.REPORTS / "load" / f"{kind}-{stamp}.{suffix}"


@dataclass(frozen=True)
class Headroom:
    """What the run cost each service (Prometheus) and what the shoppers measured (Locust)."""

    services: list[bottleneck.ServiceUsage]
    result: LoadResult
    problem: str | None = None  # why Prometheus could not answer

    @property
    def measured(self) -> list[bottleneck.ServiceUsage]:
        assert self.problem is None, self.problem
        return self.services


def headroom(session: LoadSession, prometheus: bottleneck.Queryable, namespace: str) -> Headroom:
    """Stop the shoppers (if they still run) and ask Prometheus what the run cost (once per run); the
    ranked table is attached and written under reports/load/."""
    if session.headroom is None:
        session.headroom = attach_bottlenecks(prometheus, namespace, session.stop())
    return session.headroom


def attach_bottlenecks(prometheus: bottleneck.Queryable, namespace: str, result: LoadResult) -> Headroom:
    """The services ranked by headroom over the run, attached and written under reports/load/. When
    Prometheus cannot answer, the attachment says why (the checks that need its figures fail with it)."""
    try:
        report = Headroom(bottleneck.usage(prometheus, namespace, math.ceil(result.duration_s)), result)
        text = bottleneck.table(report.services, result.endpoints)
    except Exception as exc:  # the evidence of a run must not hide the run's own outcome
        problem = f"Prometheus could not be asked for the services' usage: {exc.__class__.__name__}: {exc}"
        report, text = Headroom([], result, problem), problem
    out = report_file(result, "bottlenecks", "md")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(text + "\n")
    evidence.attach_text("Bottlenecks: headroom per service under load", text)
    return report


def attach_result(result: LoadResult) -> None:
    rows = [
        f"{e.name:<28} {e.requests:>7} {e.failures:>6} {e.rps:>7.1f} "
        f"{e.p50_ms or 0:>7.0f} {e.p95_ms or 0:>7.0f} {e.p99_ms or 0:>7.0f}"
        for e in sorted(result.endpoints.values(), key=lambda e: -e.requests)
    ]
    header = f"{'endpoint':<28} {'reqs':>7} {'fails':>6} {'rps':>7} {'p50 ms':>7} {'p95 ms':>7} {'p99 ms':>7}"
    summary = (
        f"{result.host}: {result.requests} requests in {result.duration_s:.0f} s ({result.rps:.1f}/s), "
        f"{result.failures} failed ({result.failure_ratio:.2%}), peak {result.peak_users} users"
    )
    evidence.attach_text("Locust: requests per endpoint", "\n".join([summary, "", header, *rows]))
    evidence.attach_text("Locust: failures", result.describe_failures())
    evidence.attach_text("Locust: per-second series (CSV)", result.series_csv())


def expect_few_failures(result: LoadResult, start: float | None = None, end: float | None = None) -> None:
    """Fewer than 1% of the requests failed (between ``start`` and ``end``, epoch seconds, if given)."""
    if start is None:
        requests, failures, detail = result.requests, result.failures, result.describe_failures()
    else:
        stop = end if end is not None else result.ended_at
        requests = result.requests_between(start, stop)
        failures = result.failures_between(start, stop)
        detail = f"failed per endpoint: {result.failed_endpoints_between(start, stop)}"
    assert requests > 0, f"Locust sent no request to {result.host} in the window"
    assert failures < MAX_FAILURE_RATIO * requests, (
        f"{failures} of {requests} Locust requests failed (limit {MAX_FAILURE_RATIO:.0%}): {detail}"
    )


def expect_sustained_rps(result: LoadResult, rps: float) -> None:
    """Once every user is running, Locust's mean request rate is at least ``rps``."""
    full = [s for s in result.series if s.users >= result.peak_users]
    measured = sum(s.rps for s in full) / len(full) if full else 0.0
    assert measured >= rps, (
        f"Locust sustained {measured:.1f} requests/s at {result.peak_users} users over {len(full)} s, "
        f"expected at least {rps}"
    )


def expect_tasks_run_within(session: LoadSession, tasks: list[str], seconds: float) -> float:
    """Every one of ``tasks`` has run at least once within ``seconds`` of the load's start; the seconds
    it took (the shoppers' random journeys decide when the last task first runs)."""

    def probe() -> waits.Check:
        result = session.snapshot()
        missing = result.tasks_not_run(tasks)
        detail = f"not run yet: {missing} ({result.requests} requests in all)"
        return waits.pending(detail) if missing else waits.succeeded(f"{result.requests} requests in all")

    left = seconds - (time.monotonic() - session.started_mono)
    waits.until(probe, timeout=max(left, 1), interval=0.5, what="every shopper task run once")
    return time.monotonic() - session.started_mono


def expect_route_latencies(result: LoadResult) -> None:
    """Every route of the shopper journey was answered and has its p50, p95 and p99."""
    missing = [name for name in ENDPOINTS if name not in result.endpoints]
    assert not missing, f"routes Locust never requested: {missing}"
    unanswered = [e.name for e in result.endpoints.values() if e.requests <= e.failures]
    assert not unanswered, f"routes never answered: {unanswered}"
    disordered = [
        f"{e.name}: {e.p50_ms:.0f}/{e.p95_ms:.0f}/{e.p99_ms:.0f} ms"
        for e in result.endpoints.values()
        if not 0 < e.p50_ms <= e.p95_ms <= e.p99_ms
    ]
    assert not disordered, f"latency percentiles not in order (p50/p95/p99): {disordered}"


def expect_p95_below(result: LoadResult, route: str, ceiling_ms: float) -> None:
    """The p95 of ``route`` over the whole run is under ``ceiling_ms``."""
    stats = result.endpoints.get(route)
    assert stats is not None, f"Locust never requested {route!r}: {sorted(result.endpoints)}"
    assert stats.p95_ms < ceiling_ms, (
        f"p95 of {route} was {stats.p95_ms:.0f} ms over {stats.requests} requests (limit {ceiling_ms:.0f} ms)"
    )


def ingress_request_rate(host: str, window_s: int) -> str:
    """PromQL: requests per second ingress-nginx routed for ``host`` over the last ``window_s`` seconds."""
    return f'sum(rate(nginx_ingress_controller_requests{{host="{host}"}}[{window_s}s]))'


def expect_ingress_saw_the_load(
    prometheus: bottleneck.Queryable, session: LoadSession, host: str, tolerance: float, window_s: int = 120
) -> None:
    """ingress-nginx's own count of requests for ``host`` (Prometheus) is within ``tolerance`` of the rate
    Locust sent over the same last ``window_s`` seconds: the platform saw the load the shoppers made."""
    assert session.entry.virtual_host == host, (
        f"the shoppers went to {session.entry.url} (Host {session.entry.virtual_host}), not through the "
        f"ingress for {host}"
    )
    result = session.snapshot()
    end = result.series[-1].at if result.series else time.time()
    sent = result.requests_between(end - window_s, end) / window_s
    rows = prometheus.query(ingress_request_rate(host, window_s))
    seen = float(rows[0]["value"][1]) if rows else 0.0
    assert sent > 0, f"Locust sent no request in the last {window_s} s"
    assert abs(seen - sent) <= tolerance * sent, (
        f"ingress-nginx counted {seen:.1f} requests/s for {host}, Locust sent {sent:.1f}/s over the last "
        f"{window_s} s (allowed difference {tolerance:.0%})"
    )
