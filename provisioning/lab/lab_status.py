"""What the offline lab is made of and how it reports: its control-plane components and node daemons, their
PIDs and ports, the nodes it was started with, and its status (healthy only while the ready-stamp's PIDs are
the ones running and the API server answers /readyz). Reading only: manager.py brings the lab up and down."""

from __future__ import annotations

import json
import subprocess
from dataclasses import asdict, dataclass, field

from provisioning.lab import build, processes
from provisioning.lab.layout import CONTEXT, KUBECONFIG, NET, RUNTIME_FILE, SETTINGS, STAMP, WORKDIR
from provisioning.lab.machines import nodes

COMPONENTS = (
    "etcd",
    "kube-apiserver",
    "kube-controller-manager",
    "kube-scheduler",
    "kwok-controller",
    "metrics-server",
)
PORT_OF = {
    "etcd": "etcd",
    "kube-apiserver": "kube_apiserver",
    "kube-controller-manager": "kube_controller_manager",
    "kube-scheduler": "kube_scheduler",
    "kwok-controller": "kwok_controller",
    "metrics-server": "metrics_server",
}


@dataclass
class Component:
    name: str
    pid: int | None
    alive: bool
    port: int
    host: str = "127.0.0.1"

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}" if self.port else self.host


@dataclass
class Status:
    exists: bool
    healthy: bool
    problem: str | None
    kubeconfig: str
    context: str
    components: list[Component] = field(default_factory=list)

    def as_dict(self) -> dict[str, object]:
        return asdict(self)


# --- which nodes ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class NodeRuntime:
    kind: str  # "real": kubelets + containerd in network namespaces; "kwok": simulated nodes
    reason: str


def node_runtime() -> NodeRuntime | None:
    """The nodes of the lab as it was started, or None when no lab was started."""
    try:
        data = json.loads(RUNTIME_FILE.read_text())
        return NodeRuntime(data["kind"], data["reason"])
    except (OSError, ValueError, KeyError):
        return None


# --- state -------------------------------------------------------------------------------------


def _pid(component: str) -> int | None:
    try:
        return int((WORKDIR / "pids" / f"{component}.pid").read_text().strip())
    except (OSError, ValueError):
        return None


def components() -> list[Component]:
    """The control plane's components, and the real nodes' daemons when the lab runs real nodes."""
    ports = SETTINGS["ports"]
    result = []
    for name in COMPONENTS:
        pid = _pid(name)
        # kwokctl runs each component from a link named after it in the cluster's bin directory
        result.append(Component(name, pid, processes.alive(pid, name), ports[PORT_OF[name]]))
    runtime = node_runtime()
    if runtime and runtime.kind == "real":
        for host in NET.hosts:
            for name in nodes.process_names(host):
                proc = processes.info(name)
                result.append(Component(name, proc.pid, proc.alive, 0, host.address))
    return result


def _apiserver_ready(timeout: float = 3.0) -> str | None:
    """None when /readyz answers ok, else why not."""
    kubectl = build.bin_dir("kubernetes") / "kubectl"
    try:
        proc = subprocess.run(
            [
                str(kubectl),
                "--kubeconfig",
                str(KUBECONFIG),
                "--request-timeout",
                f"{timeout:g}s",
                "get",
                "--raw",
                "/readyz",
            ],
            capture_output=True,
            text=True,
            timeout=timeout + 2,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"kube-apiserver /readyz: {exc}"
    if proc.returncode != 0 or proc.stdout.strip() != "ok":
        return f"kube-apiserver /readyz: {(proc.stderr or proc.stdout).strip()[:200]}"
    return None


def status() -> Status:
    """The lab's components and whether it is healthy (and if not, why)."""
    exists = WORKDIR.exists()
    comps = components() if exists else []
    problem = None
    if not exists:
        problem = "lab not created (run: python -m provisioning.lab up)"
    else:
        dead = [c.name for c in comps if not c.alive]
        stamp = read_stamp()
        if dead:
            problem = f"components not running: {', '.join(dead)} (logs: {WORKDIR / 'logs'})"
        elif stamp is None:
            problem = "lab started but never reported ready (half-started): run up again"
        elif {n: p for n, p in (stamp.get("pids") or {}).items() if n in COMPONENTS} != {
            c.name: c.pid for c in comps if c.name in COMPONENTS
        }:  # the control plane's; a node daemon is only required to run (its node re-registers by itself)
            problem = "components were restarted outside `up`: run up again to re-check the seed"
        else:
            problem = _apiserver_ready()
    return Status(exists, problem is None, problem, str(KUBECONFIG), CONTEXT, comps)


def read_stamp() -> dict | None:
    """The ready-stamp ``up`` wrote (the components' PIDs, ready_at, up_seconds), or None."""
    try:
        return json.loads(STAMP.read_text())
    except (OSError, ValueError):
        return None


def unpullable_images() -> list[str]:
    """The image references the lab's kubelets are configured never to pull (the settings' faults)."""
    faults = SETTINGS["faults"]
    return [f"registry.local/boutique/{name}:{faults['unpullable_tag']}" for name in faults["images"]]
