"""The load steps' checks on planted results and a fake cluster: failure windows and sustained rate
(boutique_suite/actions/load.py); the replica watch, new replicas' time to Ready, a replica count that
must hold (boutique_suite/expectations/autoscaling.py)."""

from __future__ import annotations

import datetime as dt
import time
from dataclasses import replace
from pathlib import Path
from types import SimpleNamespace as NS

import pytest

from boutique_suite.actions import latency, load
from boutique_suite.expectations import autoscaling
from boutique_suite.run import waits
from loadtests.locustfile import ENDPOINTS
from loadtests.results import EndpointStats, LoadResult, Sample

T0 = 1_700_000_000.0


def _result(per_second: list[tuple[int, int, int]]) -> LoadResult:
    """One sample per (users, requests, failures) second from T0."""
    series = [
        Sample(i, i + 1, T0 + i + 1, users, requests, failures, float(requests), 10.0)
        for i, (users, requests, failures) in enumerate(per_second)
    ]
    return LoadResult(
        host="http://192.0.2.10",
        started_at=T0,
        ended_at=T0 + len(series),
        requests=sum(s.requests for s in series),
        failures=sum(s.failures for s in series),
        endpoints={},
        errors=[],
        series=series,
    )


def test_fewer_than_one_percent_failed_passes_and_one_percent_fails() -> None:
    load.expect_few_failures(_result([(10, 100, 0), (10, 100, 1)]))
    with pytest.raises(AssertionError, match="2 of 200 Locust requests failed"):
        load.expect_few_failures(_result([(10, 100, 1), (10, 100, 1)]))


def test_failures_count_only_inside_the_window() -> None:
    result = _result([(10, 10, 10), (10, 100, 0), (10, 100, 0)])
    load.expect_few_failures(result, T0 + 1.5, T0 + 3)
    with pytest.raises(AssertionError, match="10 of 110"):
        load.expect_few_failures(result, T0 + 0.5, T0 + 1.5)


def test_a_window_without_requests_is_not_a_pass() -> None:
    with pytest.raises(AssertionError, match="no request"):
        load.expect_few_failures(_result([(10, 0, 0)]), T0, T0 + 1)


def test_the_sustained_rate_is_measured_once_every_user_runs() -> None:
    ramp_then_full = _result([(2, 1, 0), (5, 2, 0), (10, 8, 0), (10, 6, 0)])
    load.expect_sustained_rps(ramp_then_full, 7)
    with pytest.raises(AssertionError, match=r"sustained 7\.0 requests/s at 10 users"):
        load.expect_sustained_rps(ramp_then_full, 8)


class FakeKube:
    """Deployments and pods as the load checks read them."""

    def __init__(self, replicas: list[tuple[int, int, int]] | None = None) -> None:
        self.states = list(replicas or [(1, 1, 1)])  # (desired, pods, available), one per read
        self.pod_list: list[NS] = []
        self.fail_reads = 0

    def deployment(self, namespace: str, name: str) -> NS:
        if self.fail_reads:
            self.fail_reads -= 1
            raise ConnectionError("API server unreachable")
        desired, pods, available = self.states.pop(0) if len(self.states) > 1 else self.states[0]
        return NS(
            spec=NS(replicas=desired, selector=NS(match_labels={"app": name})),
            status=NS(replicas=pods, available_replicas=available),
        )

    def pods(self, namespace: str, selector: str) -> list[NS]:
        assert selector == "app=frontend"
        return self.pod_list


def _pod(name: str, created: float, ready_after: float | None) -> NS:
    stamp = dt.datetime.fromtimestamp(created, dt.UTC)
    conditions = []
    if ready_after is not None:
        ready = dt.datetime.fromtimestamp(created + ready_after, dt.UTC)
        conditions.append(NS(type="Ready", status="True", last_transition_time=ready))
    return NS(
        metadata=NS(name=name, creation_timestamp=stamp, deletion_timestamp=None),
        status=NS(conditions=conditions),
    )


def _new_replicas(kube: FakeKube, since: float) -> waits.Check:
    return autoscaling.new_replicas_ready(kube, "boutique-dev", "frontend", since, within=60)()  # type: ignore[arg-type]


def test_new_replicas_ready_in_time_pass_and_older_pods_do_not_count() -> None:
    now = time.time()
    kube = FakeKube()
    kube.pod_list = [_pod("old", now - 3600, None), _pod("new-1", now - 100, 12), _pod("new-2", now - 90, 30)]
    check = _new_replicas(kube, since=now - 200)
    assert check.outcome is waits.Outcome.SUCCEEDED
    assert check.value == {"new-1": 12, "new-2": 30}


def test_a_replica_ready_too_late_or_never_fails_and_a_young_one_is_awaited() -> None:
    now = time.time()
    kube = FakeKube()
    kube.pod_list = [_pod("slow", now - 100, 75)]
    assert _new_replicas(kube, now - 200).outcome is waits.Outcome.FAILED
    kube.pod_list = [_pod("stuck", now - 61, None)]
    assert _new_replicas(kube, now - 200).outcome is waits.Outcome.FAILED
    kube.pod_list = [_pod("young", now - 5, None)]
    assert _new_replicas(kube, now - 200).outcome is waits.Outcome.PENDING


def test_no_new_replica_at_all_fails() -> None:
    kube = FakeKube()
    kube.pod_list = [_pod("old", time.time() - 3600, 5)]
    check = _new_replicas(kube, since=time.time() - 60)
    assert check.outcome is waits.Outcome.FAILED
    assert "no replica" in check.detail


def test_the_replica_watch_sees_the_peak_and_survives_a_failed_read() -> None:
    kube = FakeKube([(1, 1, 1), (3, 2, 1), (6, 3, 3), (5, 5, 5)])
    kube.fail_reads = 1
    watch = autoscaling.ReplicaWatch(kube, "boutique-dev", "frontend", interval=0.01).start()  # type: ignore[arg-type]
    waits.until(
        lambda: waits.succeeded() if len(watch.samples) >= 5 else waits.pending(),
        timeout=5,
        interval=0.01,
        what="five replica samples",
    )
    watch.stop()
    assert watch.errors and "unreachable" in watch.errors[0]
    assert autoscaling.expect_at_most(watch, 6) == 6
    with pytest.raises(AssertionError, match=r"had 3 pods \(6 desired\).*more than 5"):
        autoscaling.expect_at_most(watch, 5)
    assert watch.csv().splitlines()[0] == "time,pods,desired"


def test_a_watch_without_samples_is_not_a_pass() -> None:
    watch = autoscaling.ReplicaWatch(FakeKube(), "boutique-dev", "frontend")  # type: ignore[arg-type]
    with pytest.raises(AssertionError, match="no replica sample"):
        autoscaling.expect_at_most(watch, 5)


def test_a_replica_count_that_must_hold_fails_when_it_moves() -> None:
    autoscaling.expect_replicas_hold(FakeKube([(5, 5, 5)]), "ns", "frontend", 5, 0.1)  # type: ignore[arg-type]
    moving = FakeKube([(5, 5, 5), (4, 5, 5)])
    with pytest.raises(waits.WaitFailed, match="desired 4"):
        autoscaling.expect_replicas_hold(moving, "ns", "frontend", 5, 5)  # type: ignore[arg-type]
    lost = FakeKube([(5, 5, 5), (5, 4, 4)])
    with pytest.raises(waits.WaitFailed, match="pods 4"):
        autoscaling.expect_replicas_hold(lost, "ns", "frontend", 5, 5)  # type: ignore[arg-type]


def test_an_overloaded_pod_missing_readiness_does_not_change_the_replica_count() -> None:
    overloaded = FakeKube([(5, 5, 4)])  # one pod missed its readiness probe at every look
    autoscaling.expect_replicas_hold(overloaded, "ns", "frontend", 5, 0.1)  # type: ignore[arg-type]


def test_steps_after_a_load_that_never_started_say_so() -> None:
    with pytest.raises(AssertionError, match="no Locust run was started"):
        _ = load.Shoppers().running
    load.Shoppers().stop()  # nothing to stop: no error


def test_the_load_chart_is_a_png_with_every_panel(tmp_path: Path) -> None:
    from boutique_suite.reporting import charts

    result = _result([(5, 4, 0), (10, 9, 1), (10, 10, 0)])
    out = charts.load_chart(result, {"frontend": [(T0, 1), (T0 + 2, 3)]}, tmp_path / "load" / "run.png")
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert out.stat().st_size > 10_000  # three panels drawn, not an empty canvas


def test_traffic_recovers_at_the_first_clean_second_after_the_fault() -> None:
    failing_then_clean = _result([(20, 4, 4), (20, 5, 2), (20, 0, 0), (20, 6, 0), (20, 5, 0)])
    session = NS(snapshot=lambda: failing_then_clean)
    check = load.traffic_recovered(session, since=T0)()  # type: ignore[arg-type]
    assert (check.outcome, check.value) == (waits.Outcome.SUCCEEDED, T0 + 4)  # an idle second is no proof
    still_failing = _result([(20, 4, 4), (20, 5, 1)])
    check = load.traffic_recovered(NS(snapshot=lambda: still_failing), since=T0)()  # type: ignore[arg-type]
    assert check.outcome is waits.Outcome.PENDING and "5 failed requests since the wait began" in check.detail


def test_traffic_recovers_only_once_the_endpoints_that_failed_answer_again() -> None:
    """What CI saw: a clean second that only set the currency, while the cart still failed."""
    cart_failing = replace(_result([(20, 3, 3)]).series[0], failures_by_endpoint={"GET /cart": 3})
    currency_only = replace(_result([(20, 1, 0)]).series[0], timings_ms=(("POST /setCurrency", 9.0),))
    cart_back = replace(_result([(20, 2, 0)]).series[0], timings_ms=(("GET /cart", 12.0), ("GET /", 8.0)))
    seconds = [replace(s, at=T0 + n + 1) for n, s in enumerate([cart_failing, currency_only, cart_back])]
    result = replace(_result([(20, 1, 0)]), series=seconds)
    check = load.traffic_recovered(NS(snapshot=lambda: result), since=T0)()  # type: ignore[arg-type]
    assert (check.outcome, check.value) == (waits.Outcome.SUCCEEDED, T0 + 3)
    result = replace(result, series=seconds[:2])
    check = load.traffic_recovered(NS(snapshot=lambda: result), since=T0)()  # type: ignore[arg-type]
    assert check.outcome is waits.Outcome.PENDING and "['GET /cart']" in check.detail


def _with_routes(p95_ms: dict[str, float] | None = None) -> LoadResult:
    """Every route of the journey answered: p50 20, p95 80, p99 120 ms, or the p95 given for a route."""
    endpoints = {name: EndpointStats(name, 50, 0, 1.0, 20.0, 80.0, 120.0, 30.0, 200.0) for name in ENDPOINTS}
    for name, p95 in (p95_ms or {}).items():
        endpoints[name] = replace(endpoints[name], p95_ms=p95, p99_ms=max(p95, 120.0))
    return replace(_result([(10, 100, 0)]), endpoints=endpoints)


def test_every_route_needs_its_percentiles_in_order() -> None:
    load.expect_route_latencies(_with_routes())
    with pytest.raises(AssertionError, match=r"not in order \(p50/p95/p99\): \['GET /: 20/10/120 ms'\]"):
        load.expect_route_latencies(_with_routes({"GET /": 10.0}))
    missing = _with_routes()
    missing.endpoints.pop("POST /cart/checkout")
    with pytest.raises(AssertionError, match=r"never requested: \['POST /cart/checkout'\]"):
        load.expect_route_latencies(missing)


def test_the_p95_of_a_route_must_stay_under_its_ceiling() -> None:
    result = _with_routes({"GET /": 480.0})
    load.expect_p95_below(result, "GET /", 500)
    with pytest.raises(AssertionError, match=r"p95 of GET / was 480 ms over 50 requests \(limit 400 ms\)"):
        load.expect_p95_below(result, "GET /", 400)
    with pytest.raises(AssertionError, match="never requested 'GET /nope'"):
        load.expect_p95_below(result, "GET /nope", 400)


class _Rate:
    def __init__(self, value: float | None) -> None:
        self.value, self.asked = value, []

    def query(self, promql: str) -> list[dict]:
        self.asked.append(promql)
        return [] if self.value is None else [{"metric": {}, "value": [0, str(self.value)]}]


def _session(virtual_host: str | None) -> load.LoadSession:
    result = _result([(50, 10, 0)] * 120)  # 10 requests/s for 120 s
    run = NS(snapshot=lambda: result)
    return load.LoadSession(run, load.Storefront("http://192.0.2.200", virtual_host), 0.0)  # type: ignore[arg-type]


def test_ingress_nginx_must_count_what_locust_sent_within_the_tolerance() -> None:
    prometheus = _Rate(11.5)
    load.expect_ingress_saw_the_load(prometheus, _session("boutique.local"), "boutique.local", 0.2)
    assert prometheus.asked == ['sum(rate(nginx_ingress_controller_requests{host="boutique.local"}[120s]))']
    with pytest.raises(
        AssertionError, match=r"counted 7\.0 requests/s for boutique.local, Locust sent 10\.0/s"
    ):
        load.expect_ingress_saw_the_load(_Rate(7.0), _session("boutique.local"), "boutique.local", 0.2)
    with pytest.raises(AssertionError, match=r"counted 0\.0 requests/s"):
        load.expect_ingress_saw_the_load(_Rate(None), _session("boutique.local"), "boutique.local", 0.2)


def test_shoppers_that_bypassed_the_ingress_are_not_compared_with_it() -> None:
    with pytest.raises(AssertionError, match=r"not through the ingress for boutique\.local"):
        load.expect_ingress_saw_the_load(_Rate(10.0), _session(None), "boutique.local", 0.2)


def test_shoppers_arrive_through_the_ingress_where_the_target_runs_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from boutique_suite.expectations import gateway
    from boutique_suite.run import targets
    from boutique_suite.run.undo import UndoStack

    asked: list[tuple[str, str | None]] = []
    monkeypatch.setattr(gateway, "storefront_host", lambda kube, namespace: "boutique.local")
    monkeypatch.setattr(
        gateway,
        "expect_storefront_at",
        lambda address, timeout, virtual_host=None: asked.append((address, virtual_host)),
    )
    monkeypatch.setattr(gateway, "create_frontend_loadbalancer", lambda *args: {})
    monkeypatch.setattr(gateway, "storefront_behind", lambda *args: "10.213.77.201")
    onprem = targets.load(str(targets.ROOT / "targets" / "onprem.example.yaml"))
    entry = load.storefront(None, onprem, "boutique-dev", UndoStack(), 5)  # type: ignore[arg-type]
    assert entry == load.Storefront("http://192.168.10.200", "boutique.local")
    assert asked == [("192.168.10.200", "boutique.local")]
    lab = load.storefront(None, targets.load("lab"), "boutique-dev", UndoStack(), 5)  # type: ignore[arg-type]
    assert lab == load.Storefront("http://10.213.77.201")  # no ingress controller in the lab


def _recent(timings: list[tuple[str, float]], seconds_ago: float = 1.0) -> load.LoadSession:
    now = time.time()
    sample = Sample(
        0, 1, now - seconds_ago, 20, len(timings), 0, float(len(timings)), None, {}, tuple(timings)
    )
    result = replace(_result([]), series=[sample])
    return load.LoadSession(NS(snapshot=lambda: result), load.Storefront("http://192.0.2.10"), 0.0)  # type: ignore[arg-type]


def test_a_routes_recent_p95_crosses_its_threshold_either_way() -> None:
    slow = _recent([("GET /product/{id}", 700.0)] * 19 + [("GET /", 50.0)] * 19)
    succeeded = waits.Outcome.SUCCEEDED
    assert latency.route_p95(slow, "GET /product/{id}", True, 600)().outcome is succeeded
    assert latency.route_p95(slow, "GET /product/{id}", False, 500)().outcome is not succeeded
    assert latency.route_p95(slow, "GET /", False, 500)().outcome is succeeded
    old = _recent([("GET /product/{id}", 700.0)] * 19, seconds_ago=60)  # outside the 20 s window
    check = latency.route_p95(old, "GET /product/{id}", True, 600)()
    assert check.outcome is not succeeded and "no request" in check.detail


def test_the_slowest_recent_route_is_named_or_the_step_fails_with_every_p95() -> None:
    session = _recent([("GET /product/{id}", 700.0), ("GET /", 50.0), ("GET /cart", 90.0)])
    assert latency.expect_slowest_route(session, "GET /product/{id}")["GET /"] == 50.0
    with pytest.raises(AssertionError, match=r"slowest route is GET /product/\{id\}, not GET /cart"):
        latency.expect_slowest_route(session, "GET /cart")
