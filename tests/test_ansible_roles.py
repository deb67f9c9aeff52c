"""The Ansible roles run for real: Debian 12 machines booted with systemd-nspawn
(provisioning/lab/machines/machines.py), ``foundation`` and ``containerd`` applied over ssh twice (the first
run changes the machines, the second changes nothing), and the result read back with testinfra over ssh, as
phases 0 and 2 do on-prem."""

from __future__ import annotations

import ssl
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import testinfra

from boutique_suite.run import waits
from provisioning import playbooks, registry_ca
from provisioning.lab.machines import machines
from tests.localhttp import serve

REASON = machines.unavailable_reason()
pytestmark = pytest.mark.skipif(REASON is not None, reason=f"no machines here: {REASON}")

MASTER, WORKER = "rt-master", "rt-worker1"


@pytest.fixture(scope="module")
def booted() -> Iterator[machines.Machines]:
    made = machines.Machines([MASTER, WORKER])
    try:
        made.up()
        yield made
    finally:
        made.down()
    assert made.leftovers() == [], "machines.down() left things behind"


@pytest.fixture(scope="module")
def registry(
    booted: machines.Machines, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[str, Path]]:
    """A TLS server on the machines' gateway with a certificate of a CA of the test's own: the registry
    containerd is told to trust. It answers 404 to every manifest, as a registry does for a missing tag."""
    gateway = booted.net.gateway
    pki, _ = registry_ca.ensure(tmp_path_factory.mktemp("ca"), (gateway,))
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(pki.crt, pki.key)
    with serve(lambda method, path, headers: (404, {"errors": []}), host=gateway, tls=context) as url:
        yield url.removeprefix("https://"), pki.ca_crt


@pytest.fixture(scope="module")
def inventory(booted: machines.Machines, registry: tuple[str, Path]) -> dict:
    master, worker = booted.machines
    hosts = [
        playbooks.InventoryHost(MASTER, master.address, "root", ("control_plane",)),
        playbooks.InventoryHost(WORKER, worker.address, "root", ("workers",)),
    ]
    ssh = playbooks.Ssh(private_key_file=str(booted.private_key), known_hosts_file=str(booted.known_hosts))
    variables = {
        # the machines have no package mirror: their image holds chrony and containerd already
        "foundation_apt_update": False,
        "containerd_apt_update": False,
        # a container does not own the clock: chrony tracks, serves and never steps it
        "foundation_chrony_control_clock": False,
        "foundation_chrony_servers": [master.address],
        "foundation_chrony_local_stratum": True,
        "foundation_chrony_serve_subnet": str(booted.net.subnet),
        "containerd_registry": registry[0],
        "containerd_registry_ca_pem": registry[1].read_text(),
    }
    return playbooks.inventory(hosts, ssh, variables)


@pytest.fixture(scope="module")
def runs(inventory: dict, tmp_path_factory: pytest.TempPathFactory) -> dict[str, list[playbooks.Recap]]:
    """Each role twice, in the order phase 0 and phase 2 run them."""
    workdir = tmp_path_factory.mktemp("ansible")
    done: dict[str, list[playbooks.Recap]] = {}
    for role, playbook, args in (
        ("foundation", "phase0.yml", ()),
        ("containerd", "phase2.yml", ("--tags", "containerd")),
    ):
        for attempt in (1, 2):
            started = time.monotonic()
            recap = playbooks.run(playbook, inventory, workdir / f"{role}-{attempt}", *args)
            recap.expect_ok()
            print(f"{role} run {attempt}: {time.monotonic() - started:.1f}s, changed {recap.changed}")
            done.setdefault(role, []).append(recap)
    return done


@pytest.fixture(scope="module")
def hosts(booted: machines.Machines, runs: dict) -> dict[str, testinfra.host.Host]:
    return {
        machine.name: testinfra.get_host(
            f"ssh://root@{machine.address}",
            ssh_identity_file=str(booted.private_key),
            ssh_extra_args=f"-o UserKnownHostsFile={booted.known_hosts} -o BatchMode=yes",
        )
        for machine in booted.machines
    }


@pytest.mark.parametrize("role", ["foundation", "containerd"])
def test_the_first_run_changes_every_machine(runs: dict, role: str) -> None:
    first = runs[role][0]
    assert set(first.changed_tasks) == {MASTER, WORKER}, first.changed_tasks


@pytest.mark.parametrize("role", ["foundation", "containerd"])
def test_the_second_run_changes_nothing(runs: dict, role: str) -> None:
    second = runs[role][1]
    assert second.changed == 0, f"{role} is not idempotent: {second.changed_tasks}"
    assert set(second.stats) == {MASTER, WORKER}


def test_each_machine_has_its_name_and_resolves_the_other(hosts: dict, booted: machines.Machines) -> None:
    addresses = {m.name: m.address for m in booted.machines}
    for name, host in hosts.items():
        assert host.check_output("hostname") == name
        for other, address in addresses.items():
            assert host.addr(other).ipv4_addresses == [address], f"{name} resolves {other} wrongly"


def test_chrony_runs_and_the_worker_follows_the_master(hosts: dict, booted: machines.Machines) -> None:
    for host in hosts.values():
        assert host.service("chrony").is_running and host.service("chrony").is_enabled
    master = booted.machines[0].address

    def follows_master() -> waits.Check:
        tracking = hosts[WORKER].check_output("chronyc -n tracking")
        synced = f"({master})" in tracking and "Leap status     : Normal" in tracking
        return waits.succeeded(tracking) if synced else waits.pending(tracking)

    waits.until(follows_master, timeout=60, what=f"{WORKER}'s chrony synchronised to {master}")


def test_swap_is_off_and_the_kernel_is_set_for_kubernetes(hosts: dict) -> None:
    for name, host in hosts.items():
        assert host.check_output("swapon --noheadings --show") == "", name
        assert host.sysctl("net.ipv4.ip_forward") == 1, name
        assert host.sysctl("net.bridge.bridge-nf-call-iptables") == 1, name
        assert host.file("/etc/modules-load.d/kubernetes.conf").content_string.split() == [
            "overlay",
            "br_netfilter",
        ]


def test_containerd_runs_with_the_systemd_cgroup_driver(hosts: dict) -> None:
    for name, host in hosts.items():
        assert host.service("containerd").is_running, name
        config = host.check_output("containerd config dump")
        assert "SystemdCgroup = true" in config, name
        assert 'config_path = "/etc/containerd/certs.d"' in config, name


def test_containerd_trusts_the_registry_ca_and_nothing_else(hosts: dict, registry: tuple[str, Path]) -> None:
    """A pull through the certs.d configuration reaches the registry over verified TLS (the registry says
    the tag is missing); the same pull without it fails on the certificate."""
    address, _ = registry
    pull = f"ctr images pull --hosts-dir {{}} {address}/boutique/probe:1 2>&1"
    for name, host in hosts.items():
        trusted = host.run(pull.format("/etc/containerd/certs.d")).stdout
        assert "not found" in trusted and "x509" not in trusted, f"{name}: {trusted[-300:]}"
        untrusted = host.run(pull.format("/nonexistent")).stdout
        assert "x509" in untrusted or "certificate" in untrusted, f"{name}: {untrusted[-300:]}"
