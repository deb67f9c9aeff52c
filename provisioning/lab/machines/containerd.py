"""A lab node's containerd and its CNI bridge network, and the directories a node keeps its files in
(containerd's root and state, the kubelet's and kube-proxy's files beside them): containerd's
configuration, ``ctr`` against the node's socket, and the teardown of what containerd left (tasks, shims,
the pods' network namespaces)."""

from __future__ import annotations

import contextlib
import json
import signal
import subprocess
from pathlib import Path

from boutique_suite.run import waits
from provisioning.lab import processes

RUN_ROOT = Path("/run/boutique-lab")
CNI_BIN = Path("/usr/lib/cni")
CONTAINERD = "containerd"


def home() -> Path:
    return processes.PLATFORM.parent / "boutique-lab-nodes"


def node_dir(name: str) -> Path:
    return home() / name


def state_dir(name: str) -> Path:
    return RUN_ROOT / name


def socket_path(name: str) -> Path:
    return state_dir(name) / "containerd.sock"


def containerd_config(name: str, sandbox_image: str) -> str:
    d, s = node_dir(name), state_dir(name)
    return f"""version = 2
root = "{d / "containerd"}"
state = "{s / "containerd"}"
[grpc]
  address = "{socket_path(name)}"
[ttrpc]
  address = "{s / "containerd-ttrpc.sock"}"
[debug]
  address = "{s / "containerd-debug.sock"}"
[metrics]
  address = ""
[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "{sandbox_image}"
  disable_apparmor = true
  # runc cannot lower oom_score_adj in this machine's sandbox ("failed to update /proc/self/oom_score_adj
  # (-998): Permission denied"): without this every pod sandbox fails to start.
  restrict_oom_score_adj = true
  enable_selinux = false
  stream_server_address = "127.0.0.1"
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        SystemdCgroup = false
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "{CNI_BIN}"
    conf_dir = "{d / "cni" / "net.d"}"
  [plugins."io.containerd.grpc.v1.cri".registry]
    config_path = "{d / "certs.d"}"
"""


def ctr(name: str, *args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["ctr", "--address", str(socket_path(name)), "--namespace", "k8s.io", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def ready(name: str) -> bool:
    return socket_path(name).exists() and ctr(name, "version", timeout=5).returncode == 0


def write_config(name: str, sandbox_image: str) -> Path:
    """The node's directories and containerd's configuration file in them (its path)."""
    d = node_dir(name)
    for sub in ("containerd", "cni/net.d", "certs.d", "logs"):
        (d / sub).mkdir(parents=True, exist_ok=True)
    state_dir(name).mkdir(parents=True, exist_ok=True)
    config = d / "containerd.toml"
    config.write_text(containerd_config(name, sandbox_image))
    return config


def write_cni(name: str, pod_cidr: str) -> bool:
    """The node's bridge network with addresses from its pod range. True when it changed."""
    conf = node_dir(name) / "cni" / "net.d" / "10-boutique-lab.conflist"
    body = json.dumps(
        {
            "cniVersion": "0.4.0",
            "name": "boutique-lab",
            "plugins": [
                {
                    "type": "bridge",
                    "bridge": "cni0",
                    "isGateway": True,
                    "ipMasq": False,
                    "hairpinMode": True,
                    "ipam": {
                        "type": "host-local",
                        "ranges": [[{"subnet": pod_cidr}]],
                        "routes": [{"dst": "0.0.0.0/0"}],
                        "dataDir": str(node_dir(name) / "cni" / "ipam"),
                    },
                },
                {"type": "portmap", "capabilities": {"portMappings": True}},
            ],
        },
        indent=2,
    )
    if conf.exists() and conf.read_text() == body:
        return False
    conf.write_text(body)
    return True


# --- teardown ----------------------------------------------------------------------------------


def sandbox_netns(name: str) -> list[Path]:
    """The network namespaces containerd made for this node's pods (read from the sandboxes' specs)."""
    listed = ctr(name, "containers", "list", "--quiet")
    paths = []
    for cid in listed.stdout.split():
        with contextlib.suppress(ValueError, KeyError, TypeError):
            info = json.loads(ctr(name, "containers", "info", cid).stdout)
            if info["Labels"].get("io.cri-containerd.kind") != "sandbox":
                continue
            for ns in info["Spec"]["linux"]["namespaces"]:
                if ns.get("type") == "network" and ns.get("path"):
                    paths.append(Path(ns["path"]).resolve())  # /var/run is /run: mountinfo names the latter
    return paths


def kill_tasks(name: str) -> None:
    tasks = ctr(name, "tasks", "list", "--quiet")
    for tid in tasks.stdout.split():
        ctr(name, "tasks", "kill", "--signal", "SIGKILL", tid, timeout=10)
    left = tasks.stdout.split()

    def deleted() -> waits.Check:
        left[:] = [tid for tid in left if ctr(name, "tasks", "delete", tid, timeout=10).returncode != 0]
        return waits.pending(f"tasks {left}") if left else waits.succeeded()

    with contextlib.suppress(waits.WaitTimeout):  # best effort: what is left goes with the shims
        waits.until(deleted, timeout=10, what=f"{name}'s tasks deleted", interval=0.2)


def kill_shims(name: str) -> None:
    marker = str(state_dir(name))
    shims = processes.find(lambda argv: "containerd-shim" in (line := "\0".join(argv)) and marker in line)
    processes.kill(shims, signal.SIGKILL)
