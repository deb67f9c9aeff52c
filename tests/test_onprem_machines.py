"""The on-prem path a user runs on hardware, run here against four Debian 12 machines of the test's own
(provisioning/lab/machines/machines.py): a target file of kind ``onprem`` naming them, then ``pytest -m phase0
--target <file>`` in a child process. Layer 0 finds the hosts unprepared, runs the ``foundation`` role over
ssh, checks them with testinfra, and the phase-0 scenarios run against them as they would against the
mini PC and the three nodes. The machines share this computer's CPUs, so the plan's sizing scenario fails
where the plan asks for more than it has: the same check, failing for a real reason."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from provisioning.lab.machines import machines

REASON = machines.unavailable_reason()
pytestmark = pytest.mark.skipif(REASON is not None, reason=f"no machines here: {REASON}")

ROOT = Path(__file__).resolve().parent.parent
ROLES = {
    "mini-pc": ["gitlab", "registry", "runner"],
    "k8s-master": ["control-plane"],
    "k8s-worker1": ["worker"],
    "k8s-worker2": ["worker"],
}


@pytest.fixture(scope="module")
def booted() -> Iterator[machines.Machines]:
    made = machines.Machines(list(ROLES))
    try:
        made.up()
        yield made
    finally:
        made.down()
    assert made.leftovers() == []


def machines_target(booted: machines.Machines, path: Path) -> Path:
    """targets/onprem.example.yaml filled in for the machines, as a user fills it for their hosts."""
    data = yaml.safe_load((ROOT / "targets" / "onprem.example.yaml").read_text())
    address = {m.name: m.address for m in booted.machines}
    data["name"] = "machines"
    data["hosts"] = {
        name: {"ip": address[name], "roles": roles, "ssh_user": "root"} for name, roles in ROLES.items()
    }
    data["ssh"] = {"private_key_file_env": "MACHINES_SSH_KEY", "known_hosts_file": str(booted.known_hosts)}
    data.pop("gateway")  # its pool is the example LAN's
    data["ansible"] = {
        "foundation_apt_update": False,  # no package mirror: the image holds chrony
        "foundation_chrony_control_clock": False,  # a container does not own the clock
        "foundation_chrony_servers": [address["mini-pc"]],
        "foundation_chrony_local_stratum": True,
        "foundation_chrony_serve_subnet": str(booted.net.subnet),
    }
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


@pytest.fixture(scope="module")
def phase0_run(booted: machines.Machines, tmp_path_factory: pytest.TempPathFactory) -> dict:
    work = tmp_path_factory.mktemp("onprem-machines")
    target = machines_target(booted, work / "machines.yaml")
    reports = work / "reports"
    env = os.environ | {"MACHINES_SSH_KEY": str(booted.private_key), "BOUTIQUE_REPORTS": str(reports)}
    argv = [sys.executable, "-m", "pytest", "steps", "-m", "phase0", "--target", str(target)]
    argv += [
        "-p",
        "no:cacheprovider",
        "-o",
        "addopts=--strict-markers",
        f"--alluredir={reports}/allure-results",
    ]
    proc = subprocess.run(argv, cwd=ROOT, env=env, capture_output=True, text=True, timeout=900)
    print(proc.stdout[-3000:])
    summary = json.loads((reports / "summary.json").read_text())
    return {"summary": summary["scenarios"], "ansible": reports / "ansible", "stdout": proc.stdout}


def outcomes(run: dict) -> dict[str, tuple[str, str]]:
    return {node.split("::", 1)[1]: (s["outcome"], s.get("label", "")) for node, s in run["summary"].items()}


def test_layer_0_built_the_hosts_with_the_foundation_role(phase0_run: dict) -> None:
    record = json.loads((phase0_run["ansible"] / "phase0.json").read_text())
    assert set(record["stats"]) == set(ROLES)
    assert all(stats["changed"] > 0 and stats["failures"] == 0 for stats in record["stats"].values()), record


MASTER_DISK_GIB = 30  # phase0_foundation.feature: k8s-master's free space for /var/lib/containerd


@pytest.mark.parametrize(
    "scenario",
    [
        "test_hosts_keep_static_addresses_and_resolve_each_other_through_etchosts",
        "test_host_clocks_are_synchronised_by_chrony",
        "test_cluster_nodes_meet_kubeadms_host_prerequisites",
        "test_each_host_has_the_cpu_memory_and_disk_the_plan_needs[k8s-master-2-4-30-/var/lib/containerd]",
    ],
)
def test_the_phase0_scenario_passes_for_real_on_the_machines(
    phase0_run: dict, scenario: str, booted: machines.Machines
) -> None:
    short = re.search(
        rf"k8s-master has ([\d.]+) GiB free for /var/lib/containerd, less than {MASTER_DISK_GIB} GiB",
        phase0_run["stdout"],
    )
    if "[k8s-master-" in scenario and short:  # the machines' disks are this computer's, short of the plan
        free_now = shutil.disk_usage(booted.machines[0].root).free / 2**30
        assert outcomes(phase0_run)[scenario] == ("failed", "real")
        assert abs(float(short[1]) - free_now) < 10, (short[0], free_now)  # it measured the real disk
        return
    assert outcomes(phase0_run)[scenario] == ("passed", "real"), phase0_run["stdout"][-2000:]


def test_the_sizing_scenario_fails_where_the_machines_have_fewer_cpus_than_the_plan(phase0_run: dict) -> None:
    """The machines have this computer's CPUs: every row whose plan asks for more fails, naming it."""
    plan_cpus = {
        "k8s-master": 2,
        "k8s-worker1": 4,
        "k8s-worker2": 4,
        "gitlab": 4,
    }  # phase0_foundation.feature
    rows = {
        name: outcome for name, (outcome, _) in outcomes(phase0_run).items() if "cpu_memory_and_disk" in name
    }
    assert len(rows) == len(plan_cpus)
    for host, cpus in plan_cpus.items():
        row = next(name for name in rows if f"[{host}-" in name)
        if cpus > (os.cpu_count() or 0):
            assert rows[row] == "failed", row
            assert f"{host} has {os.cpu_count()} CPUs, fewer than {cpus}" in phase0_run["stdout"]
