"""What the rolling-update and rollback steps decide, without a cluster: old ReplicaSets that keep pods, drops
below the desired count, the Deployment back on its previous image, replica counts kept or back, and Argo
CD's OutOfSync verdicts."""

from __future__ import annotations

from types import SimpleNamespace as NS

import pytest

from boutique_suite.actions import drift
from boutique_suite.expectations import gitops_checks, probes, rollout
from boutique_suite.run import waits

UID = "dep-uid"
OLD, NEW = "registry.local/boutique/frontend:old", "registry.local/boutique/frontend:new"


def deployment(image: str = OLD, revision: str = "2", replicas: int = 1) -> NS:
    return NS(
        metadata=NS(generation=1, annotations={probes.REVISION: revision}, uid=UID),
        spec=NS(
            replicas=replicas,
            selector=NS(match_labels={"app": "frontend"}),
            template=NS(spec=NS(containers=[NS(image=image)])),
        ),
        status=NS(
            observed_generation=1,
            conditions=[NS(type="Progressing", reason="NewReplicaSetAvailable", message="")],
            updated_replicas=replicas,
            available_replicas=replicas,
            replicas=replicas,
        ),
    )


def replica_set(name: str, revision: str, pods: int) -> NS:
    return NS(
        metadata=NS(
            name=name, annotations={probes.REVISION: revision}, labels={}, owner_references=[NS(uid=UID)]
        ),
        status=NS(replicas=pods),
    )


class FakeKube:
    def __init__(self, dep: NS, replica_sets: list[NS]) -> None:
        self.dep, self.sets = dep, replica_sets

    def deployment(self, namespace: str, name: str) -> NS:
        return self.dep

    def replica_sets(self, namespace: str, selector: str) -> list[NS]:
        return self.sets

    def pods(self, namespace: str, selector: str) -> list[NS]:
        return []

    def watch_deployments(self, namespace: str, seconds: int) -> list[object]:
        return []


class Execution:
    def __init__(self) -> None:
        self.timings: dict[str, tuple[float, float | None]] = {}

    def timing(self, name: str, seconds: float, budget: float | None = None) -> float:
        self.timings[name] = (seconds, budget)
        return seconds


def test_only_replica_sets_of_other_revisions_that_keep_pods_are_old() -> None:
    sets = [
        replica_set("frontend-a", "1", 1),
        replica_set("frontend-b", "1", 0),
        replica_set("frontend-c", "2", 1),
    ]
    assert rollout.old_replica_sets_with_pods(sets, deployment(revision="2")) == ["frontend-a"]


def test_a_finished_rollout_with_an_old_replica_set_keeping_pods_fails() -> None:
    kube = FakeKube(deployment(), [replica_set("frontend-c", "2", 1), replica_set("frontend-a", "1", 1)])
    with pytest.raises(AssertionError, match=r"old ReplicaSets still have pods: \['frontend-a'\]"):
        rollout.expect_finished(kube, "boutique-dev", "frontend", 1)  # type: ignore[arg-type]


def test_a_finished_rollout_returns_its_seconds() -> None:
    kube = FakeKube(deployment(), [replica_set("frontend-c", "2", 1), replica_set("frontend-a", "1", 0)])
    assert rollout.expect_finished(kube, "boutique-dev", "frontend", 1) < 1  # type: ignore[arg-type]


def test_availability_below_desired_at_any_sample_fails() -> None:
    rollout.expect_no_drop_below_desired([(1, 1), (2, 1), (1, 1)])
    with pytest.raises(AssertionError, match=r"dropped below desired: \[\(0, 1\)\]"):
        rollout.expect_no_drop_below_desired([(1, 1), (0, 1), (1, 1)])
    with pytest.raises(AssertionError, match="no availability sample"):
        rollout.expect_no_drop_below_desired([])


def test_the_running_image_is_the_first_containers() -> None:
    assert rollout.running_image(FakeKube(deployment(NEW), []), "boutique-dev", "frontend") == NEW  # type: ignore[arg-type]


def test_another_image_is_not_back_yet() -> None:
    check = rollout.back_on_image(FakeKube(deployment(NEW), []), "ns", "frontend", OLD)()  # type: ignore[arg-type]
    assert check.outcome is waits.Outcome.PENDING and check.detail == f"frontend runs {NEW}"


def test_the_previous_image_rolled_out_is_back_and_timed_as_the_rollback() -> None:
    kube = FakeKube(deployment(OLD), [replica_set("frontend-c", "2", 1)])
    execution = Execution()
    rollout.expect_back_on_image(kube, "ns", "frontend", OLD, 60, execution)  # type: ignore[arg-type]
    seconds, budget = execution.timings["rollback_seconds"]
    assert seconds < 1 and budget == 60


def test_the_previous_image_still_rolling_out_is_not_back() -> None:
    dep = deployment(OLD)
    dep.status.available_replicas = 0
    check = rollout.back_on_image(FakeKube(dep, []), "ns", "frontend", OLD)()  # type: ignore[arg-type]
    assert check.outcome is waits.Outcome.PENDING and "available 0" in check.detail


def test_replicas_kept_fail_at_the_first_other_count() -> None:
    drift.expect_replicas_kept(FakeKube(deployment(replicas=3), []), "ns", "frontend", 3, 0)  # type: ignore[arg-type]
    with pytest.raises(waits.WaitFailed, match="frontend has 1"):
        drift.expect_replicas_kept(FakeKube(deployment(replicas=1), []), "ns", "frontend", 3, 5)  # type: ignore[arg-type]


def test_replicas_back_wait_for_the_count() -> None:
    drift.expect_replicas_back(FakeKube(deployment(replicas=1), []), "ns", "frontend", 1, 1)  # type: ignore[arg-type]
    with pytest.raises(waits.WaitTimeout, match="frontend has 3 replicas"):
        drift.expect_replicas_back(FakeKube(deployment(replicas=3), []), "ns", "frontend", 1, 0.1)  # type: ignore[arg-type]


class ArgoCD:
    def __init__(self, *statuses: str) -> None:
        self.statuses = list(statuses)

    def refresh(self, name: str) -> dict:
        status = self.statuses.pop(0) if len(self.statuses) > 1 else self.statuses[0]
        return {"status": {"sync": {"status": status}}}


def test_out_of_sync_is_waited_for() -> None:
    gitops_checks.expect_out_of_sync(ArgoCD("OutOfSync"), "app", 1)  # type: ignore[arg-type]
    with pytest.raises(
        waits.WaitTimeout, match=r"Application app OutOfSync: still pending after 0\.1s: Synced"
    ):
        gitops_checks.expect_out_of_sync(ArgoCD("Synced"), "app", 0.1)  # type: ignore[arg-type]


def test_staying_out_of_sync_fails_at_the_first_other_status() -> None:
    gitops_checks.expect_stays_out_of_sync(ArgoCD("OutOfSync"), "app", 0)  # type: ignore[arg-type]
    with pytest.raises(waits.WaitFailed, match=r"app stays OutOfSync: .*app is Synced"):
        gitops_checks.expect_stays_out_of_sync(ArgoCD("OutOfSync", "Synced"), "app", 5)  # type: ignore[arg-type]


def test_every_row_of_the_table_is_rolled_out_and_has_ready_endpoints(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    checked = []
    monkeypatch.setattr(
        gitops_checks,
        "expect_ready_endpoints",
        lambda kube, ns, service, port: checked.append((service, port)),
    )
    kube = FakeKube(deployment(), [replica_set("frontend-c", "2", 1)])
    gitops_checks.expect_all_deployed(kube, "ns", [["frontend", "80"], ["cartservice", "7070"]], 1)  # type: ignore[arg-type]
    assert checked == [("frontend", 80), ("cartservice", 7070)]
