"""expect_pods_replaced: a force-deleted Deployment is back only when its replacement pods are Ready,
whatever the Deployment's (not yet resynced) status says."""

from __future__ import annotations

from types import SimpleNamespace as NS

import pytest

from boutique_suite.actions import drift
from boutique_suite.expectations import probes
from boutique_suite.run import waits

UID = "dep-uid"


def stale_deployment() -> NS:
    """What the lab showed 0.4 s after the force delete: the status still counts the deleted pod."""
    return NS(
        metadata=NS(generation=1, annotations={probes.REVISION: "1"}, uid=UID),
        spec=NS(replicas=1, selector=NS(match_labels={"app": "cartservice"})),
        status=NS(
            observed_generation=1,
            conditions=[NS(type="Progressing", reason="NewReplicaSetAvailable", message="")],
            updated_replicas=1,
            available_replicas=1,
            replicas=1,
        ),
    )


def pod(name: str, ready: bool) -> NS:
    return NS(
        metadata=NS(name=name, labels={probes.TEMPLATE_HASH: "h"}, deletion_timestamp=None),
        spec=NS(node_name="k8s-worker1"),
        status=NS(
            phase="Running" if ready else "Pending",
            conditions=[NS(type="Ready", status="True" if ready else "False")],
            container_statuses=[NS(state=NS(waiting=None))],
        ),
    )


class FakeKube:
    def __init__(self, pods: list[NS]) -> None:
        self.listed = pods

    def deployment(self, namespace: str, name: str) -> NS:
        return stale_deployment()

    def replica_sets(self, namespace: str, selector: str) -> list[NS]:
        return [
            NS(
                metadata=NS(
                    name="cartservice-h",
                    annotations={probes.REVISION: "1"},
                    labels={probes.TEMPLATE_HASH: "h"},
                    owner_references=[NS(uid=UID)],
                )
            )
        ]

    def pods(self, namespace: str, selector: str) -> list[NS]:
        return self.listed

    def watch_pods(self, namespace: str, selector: str, seconds: int) -> list[object]:
        return []


def test_a_stale_available_status_with_the_replacement_not_ready_is_not_back() -> None:
    kube = FakeKube([pod("cartservice-new", ready=False)])
    with pytest.raises(waits.WaitTimeout, match="replacements: 0/1 pods ready"):
        drift.expect_pods_replaced(kube, "boutique-dev", "cartservice", ["cartservice-old"], 0.2)  # type: ignore[arg-type]


def test_a_stale_available_status_before_the_replacement_exists_is_not_back() -> None:
    kube = FakeKube([])
    with pytest.raises(waits.WaitTimeout, match="0 exist"):
        drift.expect_pods_replaced(kube, "boutique-dev", "cartservice", ["cartservice-old"], 0.2)  # type: ignore[arg-type]


def test_a_ready_replacement_is_back() -> None:
    kube = FakeKube([pod("cartservice-new", ready=True)])
    took = drift.expect_pods_replaced(kube, "boutique-dev", "cartservice", ["cartservice-old"], 5)  # type: ignore[arg-type]
    assert took < 5


def test_the_deleted_pod_still_listed_is_not_back() -> None:
    kube = FakeKube([pod("cartservice-old", ready=True)])
    with pytest.raises(waits.WaitTimeout, match="deleted pods still listed"):
        drift.expect_pods_replaced(kube, "boutique-dev", "cartservice", ["cartservice-old"], 0.2)  # type: ignore[arg-type]
