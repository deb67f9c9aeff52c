"""The lab's hosts and real nodes: settings, collisions, the daemons' configuration, and (marker ``lab``)
three kubelets with a containerd runtime whose facts come from the kubelets and the controller-manager."""

from __future__ import annotations

import ipaddress
import json
import os
import signal
import subprocess
import sys
import time
import tomllib
from collections.abc import Iterator
from pathlib import Path

import pytest

from boutique_suite.run import waits
from provisioning.lab import build, lab_status, layout, manager, recipes
from provisioning.lab.machines import containerd, hosts, nodes


def test_every_host_has_its_own_address_inside_the_lab_subnet() -> None:
    net = hosts.network()
    addresses = [ipaddress.IPv4Address(h.address) for h in net.hosts]
    assert len(set(addresses)) == len(addresses) == 3
    assert all(a in net.subnet for a in addresses)
    assert ipaddress.IPv4Address(net.gateway) not in addresses
    assert not net.subnet.overlaps(net.cluster_cidr) and not net.subnet.overlaps(net.service_cidr)
    assert all(len(h.veth) <= 15 for h in net.hosts)  # Linux interface names


def test_a_subnet_that_collides_with_a_route_is_one_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    net = hosts.network()
    theirs = str(ipaddress.IPv4Network(f"{net.subnet.network_address}/16", strict=False))
    monkeypatch.setattr(hosts, "_routes", lambda: [{"dst": theirs, "dev": "eth9", "protocol": "kernel"}])
    with pytest.raises(hosts.HostError) as err:
        hosts.check_collisions(net)
    message = str(err.value)
    assert "hosts.subnet" in message and theirs in message and "eth9" in message
    assert "settings.toml" in message


def test_a_bad_subnet_names_the_field() -> None:
    settings = tomllib.loads((manager.HERE / "settings.toml").read_text())
    settings["hosts"]["subnet"] = "10.300.0.0/24"
    with pytest.raises(hosts.HostError, match=r"hosts\.subnet"):
        hosts.network(settings)


def test_our_own_pod_routes_are_not_a_collision(monkeypatch: pytest.MonkeyPatch) -> None:
    net = hosts.network()
    worker = net.host("k8s-worker1")
    ours = [{"dst": "10.244.1.0/24", "gateway": worker.address, "dev": net.bridge}]
    monkeypatch.setattr(hosts, "_routes", lambda: ours)
    hosts.check_collisions(net)


def test_containerd_config_is_per_node_and_restricts_oom_score_adj() -> None:
    config = tomllib.loads(containerd.containerd_config("k8s-worker1", "registry.k8s.io/pause:3.10"))
    cri = config["plugins"]["io.containerd.grpc.v1.cri"]
    assert cri["restrict_oom_score_adj"] is True  # else: "can't get final child's PID from pipe: EOF"
    assert cri["sandbox_image"] == "registry.k8s.io/pause:3.10"
    assert config["grpc"]["address"] == str(containerd.socket_path("k8s-worker1"))
    assert "k8s-worker1" in config["root"] and "k8s-worker1" in config["state"]
    assert cri["containerd"]["runtimes"]["runc"]["options"]["SystemdCgroup"] is False
    assert cri["registry"]["config_path"].endswith("k8s-worker1/certs.d")


def test_kubelet_config_listens_on_its_host_only_with_cgroupfs_under_its_own_root(tmp_path) -> None:
    net = hosts.network()
    config = nodes.kubelet_config(net, "k8s-worker2", tmp_path / "ca.crt", 10250)
    assert config["address"] == net.host("k8s-worker2").address
    assert config["cgroupDriver"] == "cgroupfs" and config["failCgroupV1"] is False
    assert config["cgroupRoot"] == "/boutique-lab-k8s-worker2"
    assert config["authentication"]["anonymous"]["enabled"] is False
    assert config["readOnlyPort"] == 0
    assert config["crashLoopBackOff"] == {"maxContainerRestartPeriod": "300s"}, "Kubernetes default"
    shorter = nodes.kubelet_config(net, "k8s-worker2", tmp_path / "ca.crt", 10250, "5s")
    assert shorter["crashLoopBackOff"] == {"maxContainerRestartPeriod": "5s"}


def test_kwok_is_chosen_only_when_asked_or_when_real_nodes_are_impossible(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("BOUTIQUE_LAB_NODES", "kwok")
    assert manager.choose_node_runtime().kind == "kwok"
    monkeypatch.setenv("BOUTIQUE_LAB_NODES", "real")
    monkeypatch.setattr(hosts, "unavailable_reason", lambda: "real nodes need root")
    chosen = manager.choose_node_runtime()
    assert chosen.kind == "kwok" and "real nodes need root" in chosen.reason
    monkeypatch.setenv("BOUTIQUE_LAB_NODES", "vm")
    with pytest.raises(manager.LabError, match="expected real or kwok"):
        manager.choose_node_runtime()


# --- on the running lab ----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def lab_nodes() -> dict[str, dict]:
    manager.up()
    runtime = lab_status.node_runtime()
    if runtime is None or runtime.kind != "real":
        pytest.skip(f"the lab runs KWOK nodes: {runtime.reason if runtime else 'not started'}")
    kubectl = build.bin_dir("kubernetes") / "kubectl"
    out = subprocess.run(
        [str(kubectl), "--kubeconfig", str(layout.KUBECONFIG), "get", "nodes", "-o", "json"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return {n["metadata"]["name"]: n for n in json.loads(out)["items"]}


@pytest.mark.lab
def test_three_kubelet_nodes_with_a_containerd_runtime(lab_nodes: dict[str, dict]) -> None:
    assert sorted(lab_nodes) == ["k8s-master", "k8s-worker1", "k8s-worker2"]
    version = recipes.load_versions()["kubernetes"]["version"]
    net = hosts.network()
    for name, node in lab_nodes.items():
        info = node["status"]["nodeInfo"]
        assert info["containerRuntimeVersion"].startswith("containerd://"), name
        assert info["kubeletVersion"] == version, name
        assert "kwok.x-k8s.io/node" not in node["metadata"].get("annotations", {}), name
        internal = [a["address"] for a in node["status"]["addresses"] if a["type"] == "InternalIP"]
        assert internal == [net.host(name).address]


@pytest.mark.lab
def test_pod_ranges_come_from_the_controller_manager_one_per_node(lab_nodes: dict[str, dict]) -> None:
    net = hosts.network()
    ranges = [ipaddress.IPv4Network(n["spec"]["podCIDR"]) for n in lab_nodes.values()]
    assert len(set(ranges)) == 3
    assert all(r.subnet_of(net.cluster_cidr) and r.prefixlen == 24 for r in ranges)


@pytest.mark.lab
def test_the_control_plane_node_keeps_its_taint(lab_nodes: dict[str, dict]) -> None:
    taints = {(t["key"], t["effect"]) for t in lab_nodes["k8s-master"]["spec"].get("taints", [])}
    assert ("node-role.kubernetes.io/control-plane", "NoSchedule") in taints
    for worker in ("k8s-worker1", "k8s-worker2"):
        assert not [t for t in lab_nodes[worker]["spec"].get("taints", []) if t["effect"] == "NoSchedule"]
        assert "node-role.kubernetes.io/worker" in lab_nodes[worker]["metadata"]["labels"]


@pytest.mark.lab
def test_hosts_and_nodes_ensure_twice_changes_nothing(lab_nodes: dict[str, dict]) -> None:
    net = hosts.network()
    assert hosts.ensure(net, manager.SETTINGS["ports"]["kube_apiserver"]) is False
    assert manager.up() is False


SPREAD = """
apiVersion: apps/v1
kind: Deployment
metadata: {name: productcatalogservice, namespace: NS}
spec:
  replicas: 2
  selector: {matchLabels: {app: catalog}}
  template:
    metadata: {labels: {app: catalog}}
    spec:
      topologySpreadConstraints:
      - {maxSkew: 1, topologyKey: kubernetes.io/hostname, whenUnsatisfiable: DoNotSchedule,
         labelSelector: {matchLabels: {app: catalog}}}
      securityContext: {runAsNonRoot: true, runAsUser: 1000, seccompProfile: {type: RuntimeDefault}}
      containers:
      - name: server
        image: us-central1-docker.pkg.dev/google-samples/microservices-demo/productcatalogservice:v0.10.5
        env: [{name: PORT, value: "3550"}]
        readinessProbe: {grpc: {port: 3550}, periodSeconds: 1}
        securityContext:
          allowPrivilegeEscalation: false
          readOnlyRootFilesystem: true
          capabilities: {drop: [ALL]}
---
apiVersion: v1
kind: Service
metadata: {name: productcatalogservice, namespace: NS}
spec:
  selector: {app: catalog}
  ports: [{port: 3550, targetPort: 3550}]
"""


def _kubectl(*args: str, stdin: str | None = None) -> str:
    kubectl = build.bin_dir("kubernetes") / "kubectl"
    return subprocess.run(
        [str(kubectl), "--kubeconfig", str(layout.KUBECONFIG), *args],
        input=stdin,
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    ).stdout


def _get(namespace: str, *what: str) -> dict:
    return json.loads(_kubectl("-n", namespace, "get", *what, "-o", "json"))


@pytest.fixture(scope="module")
def spread_pods(lab_nodes: dict[str, dict]) -> Iterator[dict[str, object]]:
    namespace = "suite-nodes-test"
    _kubectl("create", "namespace", namespace)
    try:
        _kubectl("apply", "-f", "-", stdin=SPREAD.replace("NS", namespace))
        _kubectl("-n", namespace, "rollout", "status", "deployment/productcatalogservice", "--timeout=90s")
        pods = json.loads(_kubectl("-n", namespace, "get", "pods", "-l", "app=catalog", "-o", "json"))[
            "items"
        ]
        service = json.loads(
            _kubectl("-n", namespace, "get", "service", "productcatalogservice", "-o", "json")
        )
        yield {"namespace": namespace, "pods": pods, "cluster_ip": service["spec"]["clusterIP"]}
    finally:
        _kubectl("delete", "namespace", namespace, "--wait=false")


def _probe_from(host: str, address: str) -> subprocess.CompletedProcess[str]:
    from provisioning.lab.services import images

    standin = images.build_standin()
    enter = hosts.network().host(host).enter()
    return subprocess.run([*enter, str(standin), "probe", "grpc", address], capture_output=True, text=True)


@pytest.mark.lab
def test_pods_on_different_workers_reach_each_other_and_the_service_answers(spread_pods: dict) -> None:
    by_node = {p["spec"]["nodeName"]: p["status"]["podIP"] for p in spread_pods["pods"]}
    assert sorted(by_node) == ["k8s-worker1", "k8s-worker2"]
    across = _probe_from("k8s-worker1", f"{by_node['k8s-worker2']}:3550")
    assert across.returncode == 0 and "SERVING" in across.stdout, across.stderr
    cluster_ip = spread_pods["cluster_ip"]
    waits.until(
        lambda: nodes.service_programmed("k8s-worker2", cluster_ip, 3550, list(by_node.values())),
        timeout=60,
        interval=0.5,
        what="kube-proxy on k8s-worker2 programs the Service",
    )
    through_service = _probe_from("k8s-worker2", f"{cluster_ip}:3550")
    assert through_service.returncode == 0 and "SERVING" in through_service.stdout, through_service.stderr


@pytest.mark.lab
def test_a_killed_container_process_is_restarted_by_its_kubelet(spread_pods: dict) -> None:
    pod = spread_pods["pods"][0]
    name, node = pod["metadata"]["name"], pod["spec"]["nodeName"]
    container_id = pod["status"]["containerStatuses"][0]["containerID"].removeprefix("containerd://")
    task = containerd.ctr(node, "tasks", "list")
    pid = next(line.split()[1] for line in task.stdout.splitlines() if line.startswith(container_id))
    os.kill(int(pid), signal.SIGKILL)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        status = json.loads(_kubectl("-n", spread_pods["namespace"], "get", "pod", name, "-o", "json"))[
            "status"
        ]
        container = status["containerStatuses"][0]
        if container["restartCount"] >= 1 and container.get("ready"):
            return
        time.sleep(1)
    raise AssertionError(f"{name} was not restarted and Ready within 60 s: {container}")


def test_a_change_to_the_nodes_settings_starts_the_lab_anew(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`lab up` on a running lab keeps it only when what it was created from is unchanged: a new kubelet
    timer in settings.toml [nodes] must reach the kubelets, not wait for a `lab down`."""
    config = tmp_path / "kwokctl.yaml"
    config.write_text("kind: KwokctlConfiguration\n")
    before = manager.creation_digest(config, "real")
    assert manager.creation_digest(config, "real") == before
    monkeypatch.setitem(manager.SETTINGS["nodes"], "crash_loop_back_off_max", "7s")
    assert manager.creation_digest(config, "real") != before
    assert manager.creation_digest(config, "kwok") != manager.creation_digest(config, "real")


def test_processes_probing_for_network_namespaces_at_once_do_not_collide() -> None:
    """The lab's session and the offline tests beside it both ask; a shared probe name made one of them skip
    with "File exists" (seen in CI)."""
    if os.geteuid() != 0:
        pytest.skip("network namespaces need root")
    probe = "\n".join(
        [
            "from provisioning.lab.machines import hosts",
            "for _ in range(15):",
            "    print(hosts.unavailable_reason())",
        ]
    )
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", probe],
            cwd=Path(__file__).resolve().parents[1],
            stdout=subprocess.PIPE,
            text=True,
        )
        for _ in range(4)
    ]
    answers = [line for proc in procs for line in proc.communicate(timeout=120)[0].splitlines()]
    assert answers == ["None"] * 60, sorted(set(answers))
