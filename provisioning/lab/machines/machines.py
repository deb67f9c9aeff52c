"""Debian 12 machines of the suite's own, for running the Ansible roles over ssh as on real hosts.

A root filesystem is made once with mmdebstrap (cached under ~/.cache/boutique-lab/machines/, keyed by suite
and package list), unpacked per machine and booted with ``systemd-nspawn --boot`` (systemd as PID 1, sshd,
journald) in a network namespace of its own on a bridge of its own, reached over ssh with a key and host keys
made for the run. The machines have no route to a package mirror: the image already holds what the roles
install (chrony, containerd), standing in for the mirror.

``down()`` stops each machine and removes every namespace, veth, bridge, cgroup and root filesystem made;
nothing here touches the lab's own hosts (provisioning/lab/machines/hosts.py) or its iptables chain. The
machines' processes are recorded apart from the platform's, and a run holds a lock on them while they are up:
the offline tests boot them beside the lab's session, whose ``lab down`` sweeps only what a killed run left.
"""

from __future__ import annotations

import contextlib
import hashlib
import ipaddress
import shutil
import socket
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

from boutique_suite.run import waits
from provisioning.lab import locks, processes, recipes
from provisioning.lab.machines import cgroups, hosts

SUITE = "bookworm"
MIRROR = "http://deb.debian.org/debian"
PACKAGES = (
    "systemd",
    "systemd-sysv",
    "dbus",
    "openssh-server",
    "python3",
    "python3-apt",  # the apt module runs on it (a standard Debian server has it)
    "sudo",
    "iproute2",
    "procps",
    "iputils-ping",
    "kmod",
    "ca-certificates",
    "openssl",
    "chrony",
    "containerd",
)
SETTINGS = hosts.SETTINGS["machines"]
HOME = processes.PLATFORM.parent / "boutique-lab-machines"
SUPERVISED = HOME / ".processes"  # the machines' records and logs, apart from the platform's
OWNER_LOCK = HOME / ".owner.lock"
CLAIM_WAIT = 30  # a sweep holds the lock for moments, a live run for as long as its machines are up


class MachineError(Exception):
    """A machine could not be made or booted; the message says which and why."""


@dataclass(frozen=True)
class MachineHost(hosts.Host):
    """A machine's network: names of its own, so machines named like the lab's hosts live beside them."""

    @property
    def veth(self) -> str:
        return f"bm-{self.name.removeprefix('k8s-')}"[:15]


@dataclass(frozen=True)
class Machine:
    name: str
    address: str
    host: hosts.Host

    @property
    def root(self) -> Path:
        return HOME / self.name / "rootfs"

    @property
    def process(self) -> str:
        return f"machine-{self.name}"

    @property
    def cgroup(self) -> str:
        """The name cgroups.ensure_cgroups() makes ``boutique-lab-machine-<name>`` of."""
        return f"machine-{self.name}"


def unavailable_reason() -> str | None:
    """Why machines cannot be made here (not root, no nspawn or mmdebstrap), or None."""
    if reason := hosts.unavailable_reason():
        return reason
    missing = [
        tool for tool in ("systemd-nspawn", "mmdebstrap", "ssh", "ssh-keygen") if not shutil.which(tool)
    ]
    if missing:
        return f"missing {', '.join(missing)} (Debian: systemd-container, mmdebstrap, openssh-client)"
    return None


def image() -> Path:
    """The cached root filesystem tarball; made with mmdebstrap the first time (about 30 s with a mirror)."""
    key = hashlib.sha256(f"{SUITE} {' '.join(sorted(PACKAGES))}".encode()).hexdigest()[:12]
    tarball = recipes.CACHE_ROOT / "machines" / f"debian-{SUITE}-{key}.tar"
    if tarball.exists():
        return tarball
    tarball.parent.mkdir(parents=True, exist_ok=True)
    partial = tarball.with_suffix(".partial.tar")
    argv = ["mmdebstrap", "--variant=minbase", f"--include={','.join(PACKAGES)}", SUITE, str(partial), MIRROR]
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=900)
    if proc.returncode != 0:
        partial.unlink(missing_ok=True)
        raise MachineError(f"mmdebstrap {SUITE} failed: {proc.stderr.strip()[-400:]}")
    partial.rename(tarball)
    for stale in tarball.parent.glob(f"debian-{SUITE}-*.tar"):
        if stale != tarball:
            stale.unlink()  # made for an older package list
    return tarball


def network(names: list[str]) -> hosts.Network:
    subnet = ipaddress.IPv4Network(SETTINGS["subnet"])
    members = tuple(
        MachineHost(name, str(subnet.network_address + 10 + i), f"boutique-machine-{name}")
        for i, name in enumerate(names)
    )
    none = ipaddress.IPv4Network("0.0.0.0/32")
    return hosts.Network(subnet, SETTINGS["bridge"], str(subnet.network_address + 1), none, none, members)


@dataclass
class Machines:
    """Machines ``names`` on their own bridge; ``up()`` boots them, ``down()`` removes everything made."""

    names: list[str]
    _lock: IO[str] | None = field(default=None, init=False, repr=False)

    def __post_init__(self) -> None:
        self.net = network(self.names)
        self.machines = [Machine(h.name, h.address, h) for h in self.net.hosts]
        self.keys = HOME / "ssh"

    @property
    def private_key(self) -> Path:
        return self.keys / "id_ed25519"

    @property
    def known_hosts(self) -> Path:
        return self.keys / "known_hosts"

    def up(self, boot_timeout: float = 90) -> None:
        self._lock = locks.claim(OWNER_LOCK, wait=CLAIM_WAIT)
        if self._lock is None:
            raise MachineError(
                f"the machines are in use by another run (it holds {OWNER_LOCK}): wait for it to end"
            )
        if self.leftovers():
            self._remove()  # an earlier run's machines of the same names
        tarball = image()
        self.keys.mkdir(parents=True, exist_ok=True)
        if not self.private_key.exists():
            _run(
                [
                    "ssh-keygen",
                    "-q",
                    "-t",
                    "ed25519",
                    "-N",
                    "",
                    "-C",
                    "boutique-machines",
                    "-f",
                    str(self.private_key),
                ]
            )
        hosts.check_collisions(self.net)
        hosts.ensure_bridge(self.net)
        known = []
        for machine in self.machines:
            hosts.ensure_host(self.net, machine.host)
            known.append(self._prepare(machine, tarball))
            self._boot(machine, boot_timeout)
        self.known_hosts.write_text("".join(known))
        for machine in self.machines:
            self._wait_ssh(machine, boot_timeout)

    def _prepare(self, machine: Machine, tarball: Path) -> str:
        """A fresh root filesystem with the run's key authorised and host keys of its own."""
        if machine.root.exists():
            shutil.rmtree(machine.root)
        machine.root.mkdir(parents=True)
        _run(["tar", "-xf", str(tarball), "-C", str(machine.root)])
        (machine.root / "etc/hostname").write_text("debian\n")
        (machine.root / "etc/hosts").write_text("127.0.0.1 localhost\n::1 localhost ip6-localhost\n")
        for old in (machine.root / "etc/ssh").glob("ssh_host_*"):
            old.unlink()
        _run(["ssh-keygen", "-q", "-A", "-f", str(machine.root)])
        ssh_dir = machine.root / "root/.ssh"
        ssh_dir.mkdir(mode=0o700, exist_ok=True)
        (ssh_dir / "authorized_keys").write_text(self.private_key.with_suffix(".pub").read_text())
        host_key = (machine.root / "etc/ssh/ssh_host_ed25519_key.pub").read_text().split()[:2]
        return f"{machine.address} {' '.join(host_key)}\n"

    def _boot(self, machine: Machine, timeout: float) -> None:
        cgroups.ensure_cgroups(machine.cgroup)
        argv = [
            "systemd-nspawn",
            f"--directory={machine.root}",
            f"--machine={machine.name}",
            "--boot",
            "--register=no",
            "--keep-unit",  # no systemd on this machine to ask for a scope: stay in the cgroup joined below
            "--console=passive",
            f"--network-namespace-path={machine.host.netns_path}",
        ]
        processes.start(
            machine.process,
            argv,
            env={"PATH": "/usr/sbin:/usr/bin:/sbin:/bin"},
            port=None,
            wait=timeout,
            ready=lambda: _listening(machine.address, 22),
            preexec=lambda: cgroups.join_cgroups(machine.cgroup),
            home=SUPERVISED,
        )

    def _wait_ssh(self, machine: Machine, timeout: float) -> None:
        def ssh_answers() -> waits.Check:
            proc = subprocess.run([*self.ssh(machine), "true"], capture_output=True, text=True, timeout=30)
            return waits.succeeded() if proc.returncode == 0 else waits.pending(proc.stderr.strip()[-200:])

        what = f"{machine.name}: ssh root@{machine.address}"
        waits.until(ssh_answers, timeout=timeout, what=what, interval=0.5, error=MachineError)

    def ssh(self, machine: Machine) -> list[str]:
        return [
            "ssh",
            "-o", "BatchMode=yes",
            "-o", f"UserKnownHostsFile={self.known_hosts}",
            "-o", "ConnectTimeout=5",
            "-i", str(self.private_key),
            f"root@{machine.address}",
        ]  # fmt: skip

    def down(self) -> list[str]:
        """Stop every machine; remove its cgroups, namespace, veth and root filesystem, then the bridge;
        then give up the claim on them."""
        try:
            return self._remove()
        finally:
            locks.release(self._lock)
            self._lock = None

    def _remove(self) -> list[str]:
        removed = []
        for machine in self.machines:
            # nspawn forwards TERM to the machine's systemd as a clean poweroff.
            if processes.stop(machine.process, grace=30, home=SUPERVISED):
                removed.append(f"machine {machine.name}")
            removed += [f"cgroup {c}" for c in cgroups.remove_cgroups(machine.cgroup)]
            if machine.host.netns_path.exists():
                hosts.run(["ip", "netns", "del", machine.host.netns], check=False)
                removed.append(f"netns {machine.host.netns}")
            if hosts._link_exists(machine.host.veth):
                hosts.run(["ip", "link", "del", machine.host.veth], check=False)
            with contextlib.suppress(FileNotFoundError):
                shutil.rmtree(HOME / machine.name)
        if hosts._link_exists(self.net.bridge):
            hosts.run(["ip", "link", "del", self.net.bridge], check=False)
            removed.append(f"bridge {self.net.bridge}")
        shutil.rmtree(self.keys, ignore_errors=True)
        return removed

    def leftovers(self) -> list[str]:
        found = [f"netns {m.host.netns}" for m in self.machines if m.host.netns_path.exists()]
        found += [
            f"link {n}"
            for n in [self.net.bridge, *(m.host.veth for m in self.machines)]
            if hosts._link_exists(n)
        ]
        found += [
            f"process {m.process}" for m in self.machines if processes.info(m.process, SUPERVISED).alive
        ]
        found += [f"rootfs {m.root}" for m in self.machines if m.root.exists()]
        found += [
            f"cgroup {c}"
            for m in self.machines
            for c in cgroups.CGROUP_ROOT.glob(f"*/{cgroups.cgroup_parent(m.cgroup)}")
        ]
        return found


def sweep() -> list[str]:
    """Remove the machines a killed run left (``lab down``): every one with a process record or a root
    filesystem, and the bridge. Machines a live run holds are that run's: left alone."""
    lock = locks.claim(OWNER_LOCK)
    if lock is None:
        return []
    try:
        recorded = {name.removeprefix("machine-") for name in processes.recorded(SUPERVISED)}
        made = {d.name for d in HOME.glob("[!.]*") if d.is_dir() and d.name != "ssh"}
        leftover = Machines(sorted(recorded | made))
        return leftover._remove() if leftover.leftovers() or hosts._link_exists(leftover.net.bridge) else []
    finally:
        locks.release(lock)


def _listening(address: str, port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(0.5)
        return sock.connect_ex((address, port)) == 0


def _run(argv: list[str]) -> None:
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=300)
    if proc.returncode != 0:
        raise MachineError(
            f"`{' '.join(argv[:3])} ...` failed: {(proc.stderr or proc.stdout).strip()[-300:]}"
        )
