"""The rendered overlays against the lab: server-side dry-run apply on the real apiserver (in a scratch
namespace) and capacity on the lab's two workers. Each check also catches a planted defect."""

from __future__ import annotations

import copy
from collections.abc import Iterator

import pytest

from boutique_suite.clients import kube
from boutique_suite.run import runlabel
from provisioning.gitops.checks import capacity, dryrun, render, report
from provisioning.lab import layout, manager

pytestmark = pytest.mark.lab


@pytest.fixture(scope="module")
def lab() -> kube.Kube:
    manager.up()
    return kube.connect(layout.KUBECONFIG, layout.CONTEXT, runlabel.new_run_id())


@pytest.fixture(scope="module")
def scratch(lab: kube.Kube) -> Iterator[str]:
    name = lab.create_namespace("gitops-dryrun")
    yield name
    lab.delete_namespace(name)


@pytest.fixture(scope="module")
def workers(lab: kube.Kube) -> list[capacity.Node]:
    return capacity.schedulable_nodes([n.to_dict() for n in lab.core.list_node().items])


def deployment(objects: list[dict], name: str) -> dict:
    return next(o for o in objects if o["kind"] == "Deployment" and o["metadata"]["name"] == name)


@pytest.mark.parametrize("overlay", sorted(render.OVERLAYS))
def test_overlay_passes_server_side_dry_run(lab: kube.Kube, scratch: str, overlay: str) -> None:
    findings, skipped = dryrun.check(lab.api, render.kustomize(f"overlays/{overlay}"), scratch)
    assert not findings, report(findings)
    # The SealedSecret CRD is in the lab once its controller ran; before that the schema check covers it.
    assert set(skipped) <= {"SealedSecret/registry-credentials"}


def test_dry_run_catches_what_only_the_apiserver_knows(lab: kube.Kube, scratch: str) -> None:
    objects = copy.deepcopy(render.kustomize("overlays/dev"))
    deployment(objects, "adservice")["spec"]["selector"]["matchLabels"] = {"app": "ads"}
    findings, _ = dryrun.check(lab.api, [deployment(objects, "adservice")], scratch)
    assert len(findings) == 1
    assert str(findings[0]).startswith(
        "Deployment/boutique-dev/adservice: [server-dry-run] 422 Unprocessable Entity"
    )
    assert "selector` does not match template `labels`" in str(findings[0])


def test_prod_fits_the_workers_at_hpa_minimums(workers: list[capacity.Node]) -> None:
    assert sorted(n.name for n in workers) == ["k8s-worker1", "k8s-worker2"]
    findings, summary = capacity.check(render.kustomize("overlays/prod"), workers)
    print(summary)
    assert not findings, report(findings)
    assert "at HPA minimums" in summary and "at HPA maximums" in summary and "headroom" in summary


def test_capacity_catches_an_unschedulable_request(workers: list[capacity.Node]) -> None:
    objects = copy.deepcopy(render.kustomize("overlays/prod"))
    container = deployment(objects, "checkoutservice")["spec"]["template"]["spec"]["containers"][0]
    container["resources"]["requests"]["cpu"] = "5"
    findings, summary = capacity.check(objects, workers)
    assert [f.rule for f in findings] == ["capacity", "capacity"]  # both replicas
    assert str(findings[0]).startswith(
        "Deployment/boutique-prod/checkoutservice: [capacity] "
        "a pod requesting 5.00 CPU / 64Mi fits on none of"
    )
    assert "2 pods do not fit" in summary.splitlines()[0]
