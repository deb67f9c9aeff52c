"""rollout_complete: the verdict concerns the current template, never what a revert left behind."""

from __future__ import annotations

from types import SimpleNamespace as NS

from boutique_suite.expectations import probes

UID = "dep-uid"


def condition(reason: str, message: str = "") -> NS:
    return NS(type="Progressing", reason=reason, message=message)


def deployment(*, generation: int, observed: int, revision: str, progressing: NS, replicas: int = 1) -> NS:
    return NS(
        metadata=NS(generation=generation, annotations={probes.REVISION: revision}, uid=UID),
        spec=NS(replicas=replicas, selector=NS(match_labels={"app": "frontend"})),
        status=NS(
            observed_generation=observed,
            conditions=[progressing],
            updated_replicas=replicas,
            available_replicas=replicas,
            replicas=replicas + 1,
        ),
    )


def replica_set(name: str, revision: str, template_hash: str) -> NS:
    return NS(
        metadata=NS(
            name=name,
            annotations={probes.REVISION: revision},
            labels={"app": "frontend", probes.TEMPLATE_HASH: template_hash},
            owner_references=[NS(uid=UID)],
        )
    )


def pod(name: str, template_hash: str, waiting: str | None, message: str = "") -> NS:
    state = NS(waiting=NS(reason=waiting, message=message) if waiting else None)
    return NS(
        metadata=NS(name=name, labels={probes.TEMPLATE_HASH: template_hash}, deletion_timestamp=None),
        status=NS(container_statuses=[NS(state=state)]),
    )


class FakeKube:
    """The Deployment halfway back from a tag that could not be pulled: the good ReplicaSet
    (renumbered to revision 3 by the revert) and the bad one (revision 2) whose pod still waits."""

    def __init__(self, dep: NS) -> None:
        self.dep = dep
        self.sets = [replica_set("frontend-good", "3", "good"), replica_set("frontend-bad", "2", "bad")]
        self.all_pods = [
            pod("frontend-good-1", "good", None),
            pod("frontend-bad-1", "bad", "ImagePullBackOff"),
        ]

    def deployment(self, namespace: str, name: str) -> NS:
        return self.dep

    def replica_sets(self, namespace: str, selector: str) -> list[NS]:
        return self.sets

    def pods(self, namespace: str, selector: str) -> list[NS]:
        wanted = dict(part.split("=") for part in selector.split(","))
        if probes.TEMPLATE_HASH not in wanted:
            return self.all_pods
        return [
            p
            for p in self.all_pods
            if p.metadata.labels[probes.TEMPLATE_HASH] == wanted[probes.TEMPLATE_HASH]
        ]


TIMED_OUT_BAD = condition("ProgressDeadlineExceeded", 'ReplicaSet "frontend-bad" has timed out progressing.')


def verdict(dep: NS) -> str:
    return probes.rollout_complete(FakeKube(dep), "boutique", "frontend")().outcome.value


def test_a_deadline_left_by_a_reverted_rollout_is_progress_not_failure() -> None:
    dep = deployment(generation=3, observed=3, revision="3", progressing=TIMED_OUT_BAD)
    assert verdict(dep) == "pending"


def test_a_spec_the_controller_has_not_observed_is_pending_whatever_its_conditions_say() -> None:
    dep = deployment(generation=3, observed=2, revision="2", progressing=TIMED_OUT_BAD)
    assert verdict(dep) == "pending"


def test_the_current_replica_set_past_its_deadline_fails_fast() -> None:
    dep = deployment(generation=2, observed=2, revision="2", progressing=TIMED_OUT_BAD)
    assert verdict(dep) == "failed"


def test_an_image_that_cannot_be_pulled_in_the_current_replica_set_fails_fast() -> None:
    dep = deployment(generation=2, observed=2, revision="2", progressing=condition("ReplicaSetUpdated"))
    assert verdict(dep) == "failed"


def test_a_rollout_with_the_old_pods_gone_succeeds() -> None:
    dep = deployment(generation=3, observed=3, revision="3", progressing=condition("NewReplicaSetAvailable"))
    dep.status.replicas = 1
    assert verdict(dep) == "succeeded"


def test_a_kubelet_that_has_not_synced_a_configmap_yet_is_pending_a_missing_one_fails() -> None:
    dep = deployment(generation=3, observed=3, revision="3", progressing=condition("ReplicaSetUpdated"))
    kube = FakeKube(dep)
    kube.all_pods = [
        pod(
            "frontend-good-1",
            "good",
            "CreateContainerConfigError",
            "failed to sync configmap cache: timed out",
        )
    ]
    assert probes.rollout_complete(kube, "boutique", "frontend")().outcome.value == "pending"
    kube.all_pods = [pod("frontend-good-1", "good", "CreateContainerConfigError", 'configmap "fe" not found')]
    check = probes.rollout_complete(kube, "boutique", "frontend")()
    assert check.outcome.value == "failed" and 'configmap "fe" not found' in check.detail
