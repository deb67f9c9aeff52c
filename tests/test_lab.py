"""The lab's ensure: idempotent up, status, recovery from a dead component or a half start, a taken
port, and a down that leaves no process. These start the real lab (marker ``lab``)."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from boutique_suite.run import targets
from provisioning import phase2_cluster
from provisioning.lab import lab_status, layout, manager, processes
from provisioning.lab.machines import nodes
from provisioning.lab.services import buildkit, gitserver

pytestmark = pytest.mark.lab
ROOT = Path(__file__).resolve().parent.parent


def pids() -> dict[str, int | None]:
    return {c.name: c.pid for c in lab_status.status().components}


def lab_processes() -> list[str]:
    """Processes whose command line points into the lab's work directory."""
    found = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            cmdline = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if str(manager.WORKDIR) in cmdline and "pytest" not in cmdline:
            found.append(f"{proc.name}: {cmdline[:120]}")
    return found


@pytest.fixture(scope="module")
def lab() -> lab_status.Status:
    manager.up()
    status = lab_status.status()
    assert status.healthy, status.problem
    return status


def test_up_twice_starts_nothing_new(lab: lab_status.Status) -> None:
    before = pids()
    started = time.monotonic()
    assert manager.up() is False
    assert time.monotonic() - started < 10
    assert pids() == before
    assert lab_status.status().healthy


def test_layer2_ensure_twice_changes_nothing(lab: lab_status.Status) -> None:
    target = targets.load("lab")
    first = phase2_cluster.ensure(target)
    second = phase2_cluster.ensure(target)
    assert first.ready and second.ready
    assert second.changed is False
    assert set(second.components) == {"k8s-master", "k8s-worker1", "k8s-worker2"}


def test_status_command_shows_components_pids_ports_and_kubeconfig(lab: lab_status.Status) -> None:
    now = lab_status.status()  # not the fixture's: the lab-wiping test may have restarted it since
    proc = subprocess.run(
        [sys.executable, "-m", "provisioning.lab", "status"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stderr
    assert "lab boutique-lab: ready" in proc.stdout
    assert str(layout.KUBECONFIG) in proc.stdout
    for comp in now.components:
        assert f"pid {comp.pid}" in proc.stdout
        assert comp.address in proc.stdout


def test_a_component_that_dies_is_reported_and_restarted(lab: lab_status.Status) -> None:
    victim = next(c for c in lab_status.status().components if c.name == "kwok-controller")
    os.kill(victim.pid, signal.SIGKILL)  # type: ignore[arg-type]
    deadline = time.monotonic() + 10
    while lab_status.status().healthy and time.monotonic() < deadline:
        time.sleep(0.2)
    broken = lab_status.status()
    assert not broken.healthy
    assert "kwok-controller" in (broken.problem or "")
    assert not phase2_cluster.check(targets.load("lab")).ready

    assert manager.up() is True
    healed = lab_status.status()
    assert healed.healthy, healed.problem
    assert pids()["kwok-controller"] != victim.pid


def test_a_half_started_lab_is_never_reported_ready(lab: lab_status.Status) -> None:
    # The ready stamp is written last; without it the lab was interrupted before it was seeded.
    manager.STAMP.unlink()
    status = lab_status.status()
    assert not status.healthy
    assert "half-started" in (status.problem or "")
    assert manager.up() is True
    assert lab_status.status().healthy


def test_a_taken_port_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = holder.getsockname()[1]
        monkeypatch.setitem(manager.SETTINGS, "ports", {"kube_apiserver": port})
        with pytest.raises(manager.LabError) as err:
            manager.check_ports_free(wait=0.5)
    message = str(err.value)
    assert f"127.0.0.1:{port} (kube_apiserver) is already in use" in message
    assert "provisioning/lab/settings.toml" in message


@pytest.mark.wipes_lab
def test_down_leaves_no_process_and_up_restores(lab: lab_status.Status) -> None:
    running = pids()
    stopped = manager.down()
    assert set(running) <= set(stopped)
    alive = [
        name
        for name, pid in running.items()
        if pid and Path(f"/proc/{pid}").exists() and processes.alive(pid, name)
    ]
    assert alive == []
    assert lab_processes() == []
    assert processes.recorded() == []
    assert gitserver.running() is None
    assert not lab_status.status().exists
    assert nodes.leftovers(manager.NET) == []  # no namespace, veth, bridge, iptables chain, mount or cgroup
    assert buildkit.leftover_mounts() == [] and buildkit.leftover_containers() == []
    assert manager.down() == []  # down twice is fine

    assert manager.up() is True
    assert lab_status.status().healthy
