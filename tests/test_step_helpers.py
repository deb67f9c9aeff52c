"""The library functions the thin steps call (issue #16, part 4), without a cluster: what each registers
on the undo stack and how it reverts, what it waits for, and the branches the steps used to hold."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from boutique_suite.actions import cluster, disruption, faults, latency, sealing
from boutique_suite.clients import alerting
from boutique_suite.expectations import alert_config, autoscaling, gateway, repos
from boutique_suite.reporting import platform_screens
from boutique_suite.reporting.cicd_trace import Trace
from boutique_suite.run import targets, waits
from boutique_suite.run.undo import UndoStack
from provisioning.lab.services.pipeline import GITLAB_CI_LOCAL_VERSION, JobResult

LAB = targets.load("lab")


class _Journal:
    def __init__(self) -> None:
        self.records: list[tuple[str, str, dict[str, Any]]] = []
        self.resolved: list[str] = []

    def record(self, description: str, kind: str, args: dict[str, Any]) -> str:
        self.records.append((description, kind, args))
        return f"key-{len(self.records)}"

    def resolve(self, key: str) -> None:
        self.resolved.append(key)


class _Kube:
    """Records namespace deletions (and the wait each asked for)."""

    def __init__(self) -> None:
        self.deleted: list[tuple[str, float]] = []

    def delete_namespace(self, name: str, wait: float = 0) -> None:
        self.deleted.append((name, wait))


def _journaled() -> tuple[UndoStack, _Journal]:
    journal = _Journal()
    return UndoStack(journal=lambda: journal), journal


# --- faults ----------------------------------------------------------------------------------------


def test_crash_loop_registers_the_pods_deletion(monkeypatch: pytest.MonkeyPatch) -> None:
    deleted: list[tuple[str, str]] = []
    monkeypatch.setattr(faults, "start_crash_loop", lambda kube, ns, name: f"{name}-run1")
    monkeypatch.setattr(faults, "delete_pod_if_present", lambda kube, ns, pod: deleted.append((ns, pod)))
    undo, journal = _journaled()
    pod, revert = faults.start_crash_loop_undoably(_Kube(), "apps", "crasher", undo)  # type: ignore[arg-type]
    assert (pod, revert) == ("crasher-run1", "delete pod crasher-run1")
    assert journal.records == [(revert, "delete_pod", {"namespace": "apps", "name": "crasher-run1"})]
    undo.revert_now(revert)
    assert deleted == [("apps", "crasher-run1")] and journal.resolved == ["key-1"]


def test_raised_requests_are_reverted_by_deleting_their_namespace(monkeypatch: pytest.MonkeyPatch) -> None:
    made = {"namespace": "stress-abc", "request": "1500m", "before": "20.0%"}
    asked: list[tuple[str, str, float]] = []
    monkeypatch.setattr(
        faults, "raise_requests", lambda kube, node, res, share: asked.append((node, res, share)) or made
    )
    kube, (undo, journal) = _Kube(), _journaled()
    got = faults.raise_requests_undoably(kube, LAB, "k8s-worker1", "cpu", 0.9, undo)  # type: ignore[arg-type]
    assert asked == [("k8s-worker1", "cpu", 0.9)]
    assert got == {**made, "fault": "delete stress-abc"}
    assert journal.records == [("delete stress-abc", "delete_namespace", {"namespace": "stress-abc"})]
    assert undo.drain() == []
    assert kube.deleted == [("stress-abc", LAB.timeouts.cleanup)]


def test_filled_workers_are_reverted_together(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(
        faults, "fill_workers", lambda kube, nodes, res, share: [f"stress-{n}" for n in nodes]
    )
    kube, undo = _Kube(), UndoStack()
    revert = faults.fill_workers_undoably(kube, LAB, ["w1", "w2"], "cpu", 0.9, undo)  # type: ignore[arg-type]
    assert revert == "delete stress-w1, stress-w2"
    undo.revert_now(revert)
    assert kube.deleted == [("stress-w1", LAB.timeouts.cleanup), ("stress-w2", LAB.timeouts.cleanup)]


# --- sealing ---------------------------------------------------------------------------------------


def test_sealed_run_id_is_deleted_on_revert_after_leftovers_went(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[str] = []
    secret = SimpleNamespace(name="suite-sealed-run1", namespace="apps")
    monkeypatch.setattr(sealing, "delete_leftovers", lambda kube, ns: calls.append(f"leftovers {ns}") or [])
    monkeypatch.setattr(
        sealing,
        "seal_run_id",
        lambda target, ns, name, run_id: calls.append(f"seal {name} {run_id}") or secret,
    )
    monkeypatch.setattr(sealing, "delete", lambda kube, ns, name: calls.append(f"delete {ns}/{name}"))
    undo, journal = _journaled()
    assert sealing.seal_run_id_undoably(None, LAB, "apps", "run1", undo) is secret  # type: ignore[arg-type]
    assert calls == ["leftovers apps", "seal suite-sealed-run1 run1"]
    assert journal.records == [
        (
            "delete SealedSecret apps/suite-sealed-run1",
            "delete_sealed_secret",
            {"namespace": "apps", "name": "suite-sealed-run1"},
        )
    ]
    assert undo.drain() == [] and calls[-1] == "delete apps/suite-sealed-run1"


# --- autoscaling -----------------------------------------------------------------------------------


def _hpa_kube(current: int, desired: int) -> SimpleNamespace:
    hpa = SimpleNamespace(
        spec=SimpleNamespace(scale_target_ref=SimpleNamespace(kind="Deployment", name="frontend")),
        status=SimpleNamespace(current_replicas=current, desired_replicas=desired),
    )
    listing = SimpleNamespace(items=[hpa])
    return SimpleNamespace(
        autoscaling=SimpleNamespace(list_namespaced_horizontal_pod_autoscaler=lambda ns: listing)
    )


def test_hpa_holds_waits_for_current_and_desired_then_the_rollout(monkeypatch: pytest.MonkeyPatch) -> None:
    rolled: list[str] = []

    def rollout_complete(kube: object, ns: str, name: str) -> waits.Probe:
        return lambda: rolled.append(f"{ns}/{name}") or waits.succeeded("rolled out")

    monkeypatch.setattr(autoscaling.probes, "rollout_complete", rollout_complete)
    check = autoscaling.hpa_holds(_hpa_kube(2, 1), "apps", "frontend", 1)()  # type: ignore[arg-type]
    assert check.outcome is waits.Outcome.PENDING and check.detail == "HPA frontend: current 2, desired 1"
    assert rolled == []
    check = autoscaling.hpa_holds(_hpa_kube(1, 1), "apps", "frontend", 1)()  # type: ignore[arg-type]
    assert check.outcome is waits.Outcome.SUCCEEDED and rolled == ["apps/frontend"]
    waited = autoscaling.wait_hpa_holds(_hpa_kube(1, 1), "apps", "frontend", 1, 5)  # type: ignore[arg-type]
    assert waited.check.detail == "rolled out"
    with pytest.raises(waits.WaitTimeout, match="HPA of frontend at 3: still pending"):
        autoscaling.wait_hpa_holds(_hpa_kube(1, 1), "apps", "frontend", 3, 0)  # type: ignore[arg-type]


def test_hpas_own_replicas_checks_the_application_then_scales_the_first(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    calls: list[tuple[Any, ...]] = []
    monkeypatch.setattr(autoscaling, "expect_replicas_ignored", lambda app, deps: calls.append((app, deps)))
    monkeypatch.setattr(
        autoscaling, "expect_replica_change_stays_synced", lambda *args: calls.append(args) or 2
    )
    argocd, undo = SimpleNamespace(application=lambda name: {"name": name}), UndoStack()
    autoscaling.expect_hpas_own_replicas(None, argocd, "dev", "apps", ["a", "b"], 20, undo)  # type: ignore[arg-type]
    assert calls == [({"name": "dev"}, ["a", "b"]), (None, argocd, "dev", "apps", "a", 20, undo)]


# --- load ------------------------------------------------------------------------------------------


def test_route_p95_crossing_reads_the_scenarios_words(monkeypatch: pytest.MonkeyPatch) -> None:
    asked: list[tuple[Any, ...]] = []
    monkeypatch.setattr(latency, "expect_route_p95", lambda *args: asked.append(args) or 7.0)
    assert latency.expect_route_p95_crossing(None, "/cart", "rises above", 500, 60) == 7.0  # type: ignore[arg-type]
    assert latency.expect_route_p95_crossing(None, "/cart", "falls below", 200, 60) == 7.0  # type: ignore[arg-type]
    assert asked == [(None, "/cart", True, 500, 60), (None, "/cart", False, 200, 60)]
    with pytest.raises(AssertionError, match="either rises above or falls below, not 'goes to'"):
        latency.expect_route_p95_crossing(None, "/cart", "goes to", 200, 60)  # type: ignore[arg-type]


# --- alerting --------------------------------------------------------------------------------------


def test_each_severity_is_routed(monkeypatch: pytest.MonkeyPatch) -> None:
    asked: list[tuple[dict[str, str], str]] = []
    monkeypatch.setattr(
        alert_config, "expect_routes", lambda am, labels, rcv: asked.append((labels, rcv)) or "ok"
    )
    routed = alert_config.expect_severities_routed(None, ("critical", "warning"), "dev", "slack")  # type: ignore[arg-type]
    assert routed == ["ok", "ok"]
    assert asked == [
        ({"severity": "critical", "namespace": "dev"}, "slack"),
        ({"severity": "warning", "namespace": "dev"}, "slack"),
    ]


def test_excused_metrics_read_as_one_line() -> None:
    excused = {"no node-exporter": ["node_load1", "node_cpu_seconds_total"], "no Loki": ["loki_up"]}
    assert alerting.excused_text(excused) == (
        "node_load1, node_cpu_seconds_total: no node-exporter; loki_up: no Loki"
    )
    assert alerting.excused_text({}) == ""


def test_alert_firing_returns_the_alert(monkeypatch: pytest.MonkeyPatch) -> None:
    asked: list[tuple[str, dict[str, str]]] = []

    def alert_firing(prom: object, name: str, labels: dict[str, str]) -> waits.Probe:
        asked.append((name, labels))
        return lambda: waits.succeeded("firing", value={"labels": {"alertname": name}})

    monkeypatch.setattr(alerting, "alert_firing", alert_firing)
    fired = alerting.wait_alert_firing(None, "PodCrashLooping", {"pod": "p"}, 5)  # type: ignore[arg-type]
    assert fired == {"labels": {"alertname": "PodCrashLooping"}}
    assert asked == [("PodCrashLooping", {"pod": "p"})]
    monkeypatch.setattr(alerting, "alert_firing", lambda *args: lambda: waits.pending("inactive"))
    with pytest.raises(waits.WaitTimeout, match="PodCrashLooping firing: still pending"):
        alerting.wait_alert_firing(None, "PodCrashLooping", {"pod": "p"}, 0)  # type: ignore[arg-type]


def test_an_alert_fires_when_its_rules_for_has_passed_since_it_became_active() -> None:
    rules = {"PodCrashLooping": {"name": "PodCrashLooping", "duration": 60}}
    prom = SimpleNamespace(rules=lambda: rules)
    alert = {"labels": {"alertname": "PodCrashLooping"}, "activeAt": "2026-12-06T17:00:00.123456789Z"}
    assert alerting.firing_since(prom, alert) == pytest.approx(1796576460.123456)  # type: ignore[arg-type]
    rules["PodCrashLooping"]["duration"] = 0  # no ``for``: firing as soon as active
    assert alerting.firing_since(prom, alert) == pytest.approx(1796576400.123456)  # type: ignore[arg-type]


def test_resolved_message_counts_from_the_revert_and_leaves_the_alarm_alone(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    alarm = {"subject": "crasher-run1", "since": 100.0, "fired_at": 130.0, "removed_at": 200.0}
    assert alerting.after_revert(alarm) == {**alarm, "since": 200.0, "fired_at": 200.0}
    asked: list[tuple[Any, ...]] = []

    def expect_slack_message(
        target: object, channel: str, seen: dict, needles: tuple, seconds: float
    ) -> float:
        seen["message"] = "the resolved one"
        asked.append((channel, dict(seen), needles, seconds))
        return 4.0

    monkeypatch.setattr(alerting, "expect_slack_message", expect_slack_message)
    assert alerting.expect_resolved_message(LAB, "#alerts", alarm, "PodCrashLooping", 60) == 4.0
    seen = {**alarm, "since": 200.0, "fired_at": 200.0, "message": "the resolved one"}
    assert asked == [("#alerts", seen, ("RESOLVED", "PodCrashLooping", "crasher-run1"), 60)]
    assert "message" not in alarm and alarm["since"] == 100.0


def test_pods_stay_pending_first_waits_then_holds(monkeypatch: pytest.MonkeyPatch) -> None:
    answers = iter([waits.pending("scheduled"), waits.succeeded("Pending"), waits.failed("one ran")])
    asked: list[tuple[Any, ...]] = []

    def pods_unschedulable(kube: object, ns: str, selector: str, reason: str, count: int) -> waits.Probe:
        asked.append((ns, selector, reason, count))
        return lambda: next(answers)

    monkeypatch.setattr(cluster, "pods_unschedulable", pods_unschedulable)
    monkeypatch.setattr(waits.time, "sleep", lambda seconds: None)
    workload = SimpleNamespace(namespace="scratch", selector="app=suite-test", replicas=3, name="suite-test")
    with pytest.raises(waits.WaitFailed, match="pods of suite-test stay Pending: stopped holding"):
        cluster.expect_pods_stay_pending(None, workload, "Insufficient cpu", 30)  # type: ignore[arg-type]
    assert asked == [("scratch", "app=suite-test", "Insufficient cpu", 3)]


# --- gateway ---------------------------------------------------------------------------------------


def test_storefront_url_prefers_the_scenarios_loadbalancer(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(gateway, "storefront_host", lambda kube, ns: f"shop.{ns}.example")
    assert gateway.storefront_url(None, LAB, "dev", {"address": "10.0.0.9"}) == ("http://10.0.0.9", None)  # type: ignore[arg-type]
    assert LAB.gateway is not None
    assert gateway.storefront_url(None, LAB, "dev", {}) == (  # type: ignore[arg-type]
        f"http://{LAB.gateway.ingress_vip}",
        "shop.dev.example",
    )


def test_service_addresses_wait_in_the_right_namespace(monkeypatch: pytest.MonkeyPatch) -> None:
    asked: list[tuple[Any, ...]] = []

    def expect_address_from_pool(kube: object, target: object, ns: str, svc: str, pool: str, timeout: float):  # type: ignore[no-untyped-def]
        asked.append((ns, svc, pool, timeout))
        return waits.Waited(waits.succeeded("assigned", value="10.0.0.7"), 1.0, 1)

    monkeypatch.setattr(gateway, "expect_address_from_pool", expect_address_from_pool)
    assert gateway.ingress_address(None, LAB, "ingress-nginx-controller", "pool") == "10.0.0.7"  # type: ignore[arg-type]
    monkeypatch.setattr(gateway.time, "monotonic", lambda: 110.0)
    made = {"namespace": "scratch", "created": 100.0}
    assert gateway.expect_test_service_address(None, LAB, made, "pool", 30) == 10.0  # type: ignore[arg-type]
    assert asked == [
        (gateway.INGRESS_NS, "ingress-nginx-controller", "pool", LAB.timeouts.assertion),
        ("scratch", gateway.TEST_SERVICE, "pool", 30),
    ]


# --- disruption ------------------------------------------------------------------------------------


def _quiet_watch(namespace: str, timeout: float) -> Iterator[dict]:
    """A watch that ends without events after a moment (it sleeps: under gevent, that lets others run)."""
    time.sleep(0.05)
    yield from ()


def test_availability_watch_is_stopped_by_the_undo_stack() -> None:
    dep = SimpleNamespace(
        metadata=SimpleNamespace(name="frontend"),
        spec=SimpleNamespace(replicas=2),
        status=SimpleNamespace(available_replicas=2),
    )
    kube = SimpleNamespace(
        apps=SimpleNamespace(list_namespaced_deployment=lambda ns: SimpleNamespace(items=[dep])),
        watch_deployments=_quiet_watch,
    )
    undo = UndoStack()
    availability = disruption.watch_availability(kube, "dev", undo)  # type: ignore[arg-type]
    assert availability.samples[0] == ("frontend", 2, 2)
    assert availability._thread is not None and availability._thread.is_alive()
    assert undo.drain() == [] and undo.done == ["stop watching availability"]
    availability._thread.join(timeout=10)
    assert not availability._thread.is_alive()


# --- screens and repos -----------------------------------------------------------------------------


def test_pipeline_job_screen_names_what_ran_the_job(monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(AssertionError, match="no pipeline job ran"):
        platform_screens.pipeline_job(Trace())
    shot: list[tuple[Any, ...]] = []
    monkeypatch.setattr(platform_screens, "job_log", lambda *args: shot.append(args) or None)
    job = JobResult(job="build", returncode=0, seconds=12.5, log="built")
    runner = f"gitlab-ci-local {GITLAB_CI_LOCAL_VERSION} (shell executor)"
    platform_screens.pipeline_job(Trace(app_commit="abc123", job=job, runner=runner))
    assert shot == [("build", 0, 12.5, "built", "abc123", runner)]


def test_app_repo_content_is_checked_on_a_clone(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    cloned: list[str] = []

    @contextlib.contextmanager
    def clone(target: object, repo: str) -> Iterator[Path]:
        cloned.append(repo)
        yield tmp_path

    monkeypatch.setattr(repos, "clone", clone)
    monkeypatch.setattr(repos, "expect_app_repo_content", lambda root: [str(root)])
    assert repos.expect_app_repo_content_in(LAB) == [str(tmp_path)]
    assert cloned == ["app-repo"]
