"""The offline lab: start and stop a kwokctl cluster (binary runtime) on 127.0.0.1; lab_status.py
reports on it.

``up()`` is idempotent: a healthy lab is left alone; a half-started lab or one whose component died is
restarted; a port taken by something else is a clear error. The lab is reported ready only after the
seed (nodes, StorageClass, IngressClass) is applied and every node is Ready: that moment is written
to a ready-stamp together with the components' PIDs, and lab_status.status() trusts the stamp only while
those same PIDs are alive.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import signal
import string
import subprocess
import sys
import time
from dataclasses import asdict
from pathlib import Path

from boutique_suite.run import waits
from provisioning.lab import build, kubectl, lab_status, locks, ports, processes, recipes
from provisioning.lab.lab_status import NodeRuntime
from provisioning.lab.layout import (
    CREATED_WITH,
    HERE,
    KWOK_HOME,
    NAME,
    NET,
    RENDERED_CONFIG,
    RUNTIME_FILE,
    SETTINGS,
    STAMP,
    WORKDIR,
)
from provisioning.lab.machines import hosts, nodes
from provisioning.lab.services import coredns

CLUSTER_COMPONENTS = ("kubernetes", "etcd", "kwok", "metrics-server")  # sections of versions.toml
NODE_COMPONENTS = ("kubernetes-node",)


class LabError(Exception):
    """The lab cannot be started or used; the message says what to do."""


class ComponentsDied(LabError):
    """Components of the lab exited while it was starting (metrics-server, say, when the API server it asks
    for its request-header CA answered too late on two busy cores)."""


# --- which nodes ---------------------------------------------------------------------------------


def choose_node_runtime() -> NodeRuntime:
    """Real nodes unless the settings or BOUTIQUE_LAB_NODES ask for KWOK, or this machine cannot run them."""
    wanted = os.environ.get("BOUTIQUE_LAB_NODES") or SETTINGS["nodes"]["runtime"]
    if wanted not in ("real", "kwok"):
        raise LabError(
            f"BOUTIQUE_LAB_NODES / settings.toml nodes.runtime: expected real or kwok, got {wanted!r}"
        )
    if wanted == "kwok":
        return NodeRuntime("kwok", "KWOK nodes chosen (BOUTIQUE_LAB_NODES or settings.toml [nodes] runtime)")
    why = hosts.unavailable_reason()
    if why is None and (missing := nodes.missing_tools()):
        why = "missing " + ", ".join(missing)
    if why:
        return NodeRuntime("kwok", f"KWOK nodes: real nodes are not possible here ({why})")
    return NodeRuntime("real", "real nodes: kubelet + containerd + runc in a network namespace per host")


# --- start / stop ------------------------------------------------------------------------------


def _render_config(bins: dict[str, Path]) -> Path:
    template = string.Template((HERE / "kwok" / "kwokctl.yaml.tmpl").read_text())
    ports = SETTINGS["ports"]
    ms_dir = bins["metrics-server"].parent
    values = {
        "kube_version": recipes.load_versions()["kubernetes"]["version"],
        "kube_apiserver_port": ports["kube_apiserver"],
        "etcd_port": ports["etcd"],
        "etcd_peer_port": ports["etcd_peer"],
        "kube_controller_manager_port": ports["kube_controller_manager"],
        "kube_scheduler_port": ports["kube_scheduler"],
        "kwok_controller_port": ports["kwok_controller"],
        "metrics_server_port": ports["metrics_server"],
        "kube_apiserver_binary": bins["kubernetes"] / "kube-apiserver",
        "kube_controller_manager_binary": bins["kubernetes"] / "kube-controller-manager",
        "kube_scheduler_binary": bins["kubernetes"] / "kube-scheduler",
        "kubectl_binary": bins["kubernetes"] / "kubectl",
        "etcd_binary": bins["etcd"] / "etcd",
        "kwok_controller_binary": bins["kwok"] / "kwok",
        "metrics_server_binary": bins["metrics-server"] / "metrics-server",
        "metrics_server_manifests": ms_dir / "manifests",
        "hpa_sync_period": SETTINGS["controllers"]["hpa_sync_period"],
        "hpa_downscale_stabilization": SETTINGS["controllers"]["hpa_downscale_stabilization"],
        "metric_resolution": SETTINGS["controllers"]["metric_resolution"],
        "default_cpu_usage": SETTINGS["usage"]["default_cpu"],
        "default_memory_usage": SETTINGS["usage"]["default_memory"],
        "unpullable_images": json.dumps(lab_status.unpullable_images()),
        "gateway": NET.gateway,
        "kubernetes_service_ip": str(NET.service_cidr.network_address + 1),
        "service_cidr": str(NET.service_cidr),
        "cluster_cidr": str(NET.cluster_cidr),
        "pki_dir": WORKDIR / "pki",
    }
    RENDERED_CONFIG.parent.mkdir(parents=True, exist_ok=True)
    RENDERED_CONFIG.write_text(template.substitute(values))
    return RENDERED_CONFIG


def check_ports_free(wait: float = 10.0) -> None:
    """Raise LabError naming every taken port. Waits up to ``wait`` seconds: a component that was just
    stopped keeps its listener until the kernel has torn the process down."""

    def busy() -> dict[str, int]:
        return {name: port for name, port in SETTINGS["ports"].items() if ports.taken(port)}

    with contextlib.suppress(waits.WaitTimeout):
        waits.until(
            lambda: waits.pending() if busy() else waits.succeeded(),
            timeout=wait,
            what="ports",
            interval=0.25,
        )
    taken = [
        f"127.0.0.1:{port} ({name}) is already in use{ports.owner(port)}" for name, port in busy().items()
    ]
    if taken:
        raise LabError(
            "; ".join(taken) + ". Stop what holds it, or change [ports] in provisioning/lab/settings.toml"
        )


def _kwokctl(bins: dict[str, Path], *args: str, timeout: float) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ)
    # kwokctl looks for kubectl on PATH too: put the pinned one first.
    env["PATH"] = f"{bins['kubernetes']}{os.pathsep}{env.get('PATH', '')}"
    cmd = [str(bins["kwok"] / "kwokctl"), "--name", NAME, *args]
    try:
        return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=env)
    except subprocess.TimeoutExpired as exc:
        raise LabError(f"`kwokctl {' '.join(args[:2])}` did not finish in {timeout:g}s") from exc


def _seed_and_wait(runtime: NodeRuntime) -> None:
    # Real nodes register themselves; the KWOK fallback gets the on-prem topology as seeded Node objects.
    seed = HERE / "seed" / "platform.yaml" if runtime.kind == "real" else HERE / "seed"

    def seed_applied() -> waits.Check:  # the apiserver may still be installing its built-in RBAC
        try:
            kubectl.apply("-f", str(seed))
        except kubectl.KubectlError as exc:
            return waits.pending(str(exc))
        return waits.succeeded()

    try:
        waits.until(seed_applied, timeout=30, what="the lab's seed applied", error=LabError)
        if runtime.kind == "real":
            _ensure_real_nodes()
        kubectl.run(
            "wait",
            "--for=condition=Ready",
            "node",
            "--all",
            f"--timeout={SETTINGS['timeouts']['nodes_ready']}s",
        )
        if runtime.kind == "real":
            _ensure_cluster_dns()
    except kubectl.KubectlError as exc:
        raise LabError(str(exc)) from None


def _ensure_cluster_dns() -> None:
    """CoreDNS in kube-system, as kubeadm's addon on-prem (its image from the lab's registry mirror)."""
    from provisioning.lab.services import catalog

    try:
        coredns.ensure(catalog.running(), SETTINGS["hosts"]["service_cidr"])
    except coredns.CoreDNSError as exc:
        raise LabError(str(exc)) from None


def _ensure_real_nodes() -> None:
    """The lab's registry on the gateway (the nodes pull from it as on-prem nodes pull from GitLab's), the
    stand-in images pushed to it, then the nodes."""
    from provisioning.lab.machines import containerd
    from provisioning.lab.services import catalog, registry

    server = f"https://{NET.gateway}:{SETTINGS['ports']['kube_apiserver']}"
    try:
        mirror, local = catalog.running(), catalog.local()
        catalog.push_all(mirror, local)
        for host in NET.hosts:  # each node's containerd finds registry.local and the mirrored upstreams
            certs_d = containerd.node_dir(host.name) / "certs.d"
            registry.write_certs_d(certs_d, mirror.url, local.url, mirror.ca_file)
        nodes.ensure(
            NET,
            WORKDIR / "pki",
            server,
            kubectl.lab(),
            SETTINGS["nodes"],
            timeout=SETTINGS["timeouts"]["nodes_ready"],
        )
    except (nodes.NodeError, hosts.HostError, registry.RegistryError, recipes.BuildError) as exc:
        raise LabError(str(exc)) from None


def _write_stamp(started: float) -> None:
    comps = lab_status.components()
    dead = [c.name for c in comps if not c.alive]
    if dead:
        raise ComponentsDied(f"components died during start: {', '.join(dead)} (logs: {WORKDIR / 'logs'})")
    STAMP.write_text(
        json.dumps(
            {
                "pids": {c.name: c.pid for c in comps},
                "ready_at": time.time(),
                "up_seconds": round(time.monotonic() - started, 2),
            }
        )
    )


def _exclusive() -> contextlib.AbstractContextManager[None]:
    return locks.exclusive(KWOK_HOME / f"{NAME}.lock")


def up() -> bool:
    """Make the lab healthy. Returns True when something was started, False when it already was."""
    with _exclusive():
        try:
            return _up()
        except ComponentsDied as exc:
            # As a kubelet restarts a crashed static pod: the start again stops what is left and starts
            # the lab on the same etcd data; a component that dies a second time stops the lab with this.
            print(f"lab: {exc}; starting them again", file=sys.stderr)
            return _up()


def creation_digest(config: Path, runtime_kind: str) -> str:
    """What the running lab was created from: kwokctl's config (versions, ports, controller timers), the
    node runtime, the nodes' own settings (kubelet timers, sandbox image) and the cluster DNS the kubelets
    name. Any change starts it anew."""
    nodes_settings = json.dumps({**SETTINGS["nodes"], "cluster_dns": coredns.image()}, sort_keys=True)
    return hashlib.sha256(config.read_bytes() + runtime_kind.encode() + nodes_settings.encode()).hexdigest()


def _up() -> bool:
    runtime = choose_node_runtime()
    wanted = list(CLUSTER_COMPONENTS) + (list(NODE_COMPONENTS) if runtime.kind == "real" else [])
    try:
        bins = build.ensure_all(wanted)
    except recipes.BuildError as exc:
        raise LabError(str(exc)) from None
    config = _render_config(bins)
    digest = creation_digest(config, runtime.kind)
    created_with = CREATED_WITH.read_text().strip() if CREATED_WITH.exists() else None
    current = lab_status.status()
    if current.healthy and created_with == digest:
        return False
    started = time.monotonic()
    STAMP.unlink(missing_ok=True)
    if current.exists and created_with != digest:
        _down()  # settings, versions, stages or nodes changed since this lab was created: start it anew
        current = lab_status.status()
    if runtime.kind == "real":
        try:
            hosts.ensure(NET, SETTINGS["ports"]["kube_apiserver"])
        except hosts.HostError as exc:
            raise LabError(str(exc)) from None
    RUNTIME_FILE.parent.mkdir(parents=True, exist_ok=True)
    RUNTIME_FILE.write_text(json.dumps(asdict(runtime)))
    if current.exists:
        # Half-started, or a component died: stop what is left and start again on the same etcd data.
        _kwokctl(bins, "stop", "cluster", timeout=60)
        _kill_leftovers({c.pid: c.name for c in current.components if c.pid})
        check_ports_free()
        proc = _kwokctl(bins, "start", "cluster", "--wait", "60s", timeout=SETTINGS["timeouts"]["create"])
        if proc.returncode != 0:
            _down()  # not recoverable in place: start from scratch
            return _up()
    else:
        check_ports_free()
        proc = _kwokctl(
            bins,
            "create",
            "cluster",
            "--runtime",
            "binary",
            "--config",
            str(config),
            "--kubeconfig",
            "",
            "--wait",
            "60s",
            timeout=SETTINGS["timeouts"]["create"],
        )
        if proc.returncode != 0:
            log = (proc.stderr or proc.stdout).strip().splitlines()[-5:]
            _down()
            raise LabError("kwokctl create cluster failed: " + " | ".join(log))
        CREATED_WITH.write_text(digest)
    _seed_and_wait(runtime)
    _write_stamp(started)
    return True


def _kill_leftovers(known: dict[int, str] | None = None) -> list[str]:
    """Stop every lab process (found by its binary's path, plus the ``known`` PIDs of the pid files):
    TERM, wait up to 10 s for each PID to be gone, then KILL and wait again. Returns their names."""
    names: dict[int, str] = {}
    for sig, grace in ((signal.SIGTERM, 10.0), (signal.SIGKILL, 5.0)):
        # every process started from the lab's bin directory, whether or not a pid file names it
        running = processes.running_from(WORKDIR / "bin")
        procs = {**{pid: n for pid, n in (known or {}).items() if processes.alive(pid, n)}, **running}
        names.update(procs)
        processes.kill(procs, sig)
        processes.wait_gone(procs, grace)
    return sorted(set(names.values()))


def down() -> list[str]:
    """Stop and delete the lab. Returns the components that were still running. Leaves no process."""
    with _exclusive():
        return _down()


def _down() -> list[str]:
    stopped_nodes = _down_nodes()
    stopped_platform = _stop_platform()
    return stopped_nodes + stopped_platform + _down_cluster()


def _down_nodes() -> list[str]:
    """Real nodes go first (pods, daemons, mounts, cgroups, namespaces), while the API server still runs."""
    RUNTIME_FILE.unlink(missing_ok=True)
    if os.geteuid() != 0 or hosts.missing_tools():
        return []
    from provisioning.lab.machines import (
        machines,  # the Ansible role tests' machines, if a killed run left them
    )

    swept = [item for item in machines.sweep() if item.startswith("machine ")]
    return swept + [item for item in nodes.down(NET) if item.startswith("node-")]


def _stop_platform() -> list[str]:
    """The platform layer's local processes (Prometheus, the git server...) go first: they use the cluster."""
    from provisioning.lab.services import buildkit, gitserver

    stopped = [name for name in processes.recorded() if processes.stop(name)]
    buildkit.stop()  # what a buildkitd killed mid-build left mounted under its root
    if gitserver.stop(gitserver.STATE):
        stopped.append("git-server")
    return stopped


def _down_cluster() -> list[str]:
    STAMP.unlink(missing_ok=True)
    CREATED_WITH.unlink(missing_ok=True)
    if not WORKDIR.exists():
        return _kill_leftovers()
    components = lab_status.components()
    running = [c.name for c in components if c.alive]
    kwokctl = build.bin_dir("kwok") / "kwokctl"
    if kwokctl.exists():
        subprocess.run([str(kwokctl), "--name", NAME, "delete", "cluster"], capture_output=True, timeout=120)
    _kill_leftovers({c.pid: c.name for c in components if c.pid})
    if WORKDIR.exists():
        shutil.rmtree(WORKDIR, ignore_errors=True)
    return running
