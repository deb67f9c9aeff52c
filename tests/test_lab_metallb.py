"""Real MetalLB address management in the lab: the controller built from the module proxy runs against the
lab's apiserver with gitops-repo's pool on loopback addresses, a second ensure starts nothing, and it
assigns only what the pool and the Service's annotations allow."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from kubernetes import client

from boutique_suite.clients.kube import Kube, connect_to
from boutique_suite.context.sites import site_for
from boutique_suite.expectations import gateway
from boutique_suite.run import runlabel, targets, waits
from provisioning.lab import build, processes, recipes
from provisioning.lab.services import metallb

pytestmark = pytest.mark.lab
LAB = targets.load("lab")
assert LAB.gateway is not None
GW = LAB.gateway


@pytest.fixture(scope="module")
def controller() -> metallb.Controller:
    return metallb.ensure(GW.addresses)


@pytest.fixture(scope="module")
def kube(controller: metallb.Controller) -> Kube:
    return connect_to(LAB, runlabel.new_run_id())


@pytest.fixture(scope="module")
def namespace(kube: Kube) -> Iterator[str]:
    name = kube.create_namespace("suite-metallb")
    yield name
    kube.delete_namespace(name)


def service(kube: Kube, namespace: str, name: str, annotations: dict[str, str]) -> None:
    body = client.V1Service(
        metadata=client.V1ObjectMeta(name=name, labels=kube.labels(), annotations=annotations),
        spec=client.V1ServiceSpec(
            type="LoadBalancer", selector={"app": name}, ports=[client.V1ServicePort(port=80)]
        ),
    )
    kube.core.create_namespaced_service(namespace, body)


def test_ensure_again_starts_nothing_new(controller: metallb.Controller) -> None:
    again = metallb.ensure(GW.addresses)
    assert again.pid == controller.pid
    assert processes.info(metallb.NAME).alive
    assert f'metallb_allocator_addresses_total{{pool="{GW.pool}"}} 21' in metallb.metrics()


def test_controller_listens_on_loopback_only(controller: metallb.Controller) -> None:
    inodes = set()
    for fd in (Path(f"/proc/{controller.pid}/fd")).iterdir():
        target = fd.readlink().name if fd.is_symlink() else ""
        if target.startswith("socket:["):
            inodes.add(target[8:-1])
    listening = []
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:  # IPv4 sockets; state 0A = LISTEN
        cols = line.split()
        if cols[3] == "0A" and cols[9] in inodes:
            listening.append(cols[1])
    assert listening == [f"0100007F:{metallb.PORT:04X}"], listening  # 127.0.0.1:<metrics port>, nothing else
    v6 = [
        line.split()[9]
        for line in Path("/proc/net/tcp6").read_text().splitlines()[1:]
        if line.split()[3] == "0A"
    ]
    assert not inodes & set(v6), "the controller listens on an IPv6 socket (all interfaces)"


def test_pool_is_gitops_repos_with_the_lab_range() -> None:
    gitops = {o["kind"]: o for o in metallb.gitops_pool_objects()}
    lab = {o["kind"]: o for o in metallb.lab_pool_objects(GW.addresses)}
    assert set(lab) == {"IPAddressPool", "L2Advertisement"} == set(gitops)
    assert lab["IPAddressPool"]["spec"]["addresses"] == GW.addresses
    assert gitops["IPAddressPool"]["spec"]["addresses"] != GW.addresses  # the LAN's range stays in gitops
    assert lab["IPAddressPool"]["metadata"]["namespace"] == metallb.NS
    assert lab["L2Advertisement"]["spec"] == gitops["L2Advertisement"]["spec"]


def test_service_gets_an_address_from_the_pool(kube: Kube, namespace: str) -> None:
    service(kube, namespace, "from-pool", {metallb.POOL_ANNOTATION: GW.pool})
    waited = waits.until(
        gateway.address_from_pool(kube, GW, namespace, "from-pool", GW.pool),
        timeout=30,
        interval=0.25,
        what="address from the pool",
    )
    assert GW.contains(str(waited.check.value))


def test_no_address_from_a_pool_that_does_not_exist(kube: Kube, namespace: str) -> None:
    service(kube, namespace, "no-such-pool", {metallb.POOL_ANNOTATION: "no-such-pool"})
    probe = gateway.address_from_pool(kube, GW, namespace, "no-such-pool", GW.pool)
    waits.consistently(
        lambda: waits.succeeded() if probe().outcome is waits.Outcome.PENDING else waits.failed("assigned"),
        duration=5,
        what="no address for a pool that does not exist",
    )


def test_no_address_outside_the_pool(kube: Kube, namespace: str) -> None:
    service(kube, namespace, "outside", {metallb.VIP_ANNOTATION: "127.0.11.1"})  # not in any pool

    def event_says_why() -> waits.Check:
        events = kube.core.list_namespaced_event(
            namespace, field_selector="involvedObject.name=outside"
        ).items
        reasons = [e.reason for e in events]
        svc = kube.core.read_namespaced_service("outside", namespace)
        if svc.status.load_balancer and svc.status.load_balancer.ingress:
            return waits.failed(f"got {svc.status.load_balancer.ingress[0].ip} outside the pool")
        return waits.succeeded(str(reasons)) if "AllocationFailed" in reasons else waits.pending(str(reasons))

    waits.until(event_says_why, timeout=30, interval=0.5, what="AllocationFailed event")


def test_lab_down_stops_it_with_the_other_platform_processes(controller: metallb.Controller) -> None:
    """manager._stop_platform stops every process processes.py recorded: the controller is one of them."""
    assert metallb.NAME in processes.recorded()
    assert recipes.load_versions()["metallb"]["version"] == controller.version


def test_source_patch_refuses_a_file_that_changed_under_it() -> None:
    edits = [("MetricsPort: *port,", recipes.METALLB_LOOPBACK_METRICS)]
    assert build.patched_source("a\nMetricsPort: *port,\n", edits, "main.go") == (
        f"a\n{recipes.METALLB_LOOPBACK_METRICS}\n"
    )
    for changed in ("MetricsPort: *metricsPort,", "MetricsPort: *port,\nMetricsPort: *port,"):
        with pytest.raises(recipes.BuildError, match=r"main\.go: expected 'MetricsPort: \*port,' once"):
            build.patched_source(changed, edits, "main.go")


def test_a_controller_that_cannot_start_skips_the_scenarios_with_the_reason(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    def no_proxy(names: list[str], force: bool = False) -> None:
        raise recipes.BuildError("cannot read https://proxy.example/…: (is the Go module proxy reachable?)")

    monkeypatch.setattr(build, "ensure_all", no_proxy)
    with pytest.raises(metallb.MetalLBError, match="module proxy reachable"):
        metallb.ensure(GW.addresses)
    dead = processes.Proc(metallb.NAME, None, False, metallb.PORT, tmp_path / "metallb-controller.log")
    monkeypatch.setattr(metallb, "status", lambda: dead)
    assert site_for(LAB).metallb_missing() == (
        "MetalLB's controller is not running in the lab: "
        "cannot read https://proxy.example/…: (is the Go module proxy reachable?)"
    )


def test_the_speaker_is_metallbs_own_daemonset_with_the_lab_registrys_image() -> None:
    objects = {(o["kind"], o["metadata"]["name"]): o for o in metallb.speaker_objects("registry.local/x:1")}
    assert set(objects) == metallb.SPEAKER_OBJECTS
    pod = objects[("DaemonSet", "speaker")]["spec"]["template"]["spec"]
    assert pod["hostNetwork"] is True  # it answers ARP on the node's own interface
    assert [c["image"] for c in pod["containers"]] == ["registry.local/x:1"]
    assert "NET_RAW" in pod["containers"][0]["securityContext"]["capabilities"]["add"]
    secrets = [v["secret"]["secretName"] for v in pod["volumes"] if "secret" in v]
    assert secrets == [metallb.MEMBERLIST_SECRET]
