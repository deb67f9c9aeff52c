"""Ansible for the on-prem phases: the inventory made from the target file, and ``ansible-playbook`` runs of
``provisioning/ansible/phase<N>.yml`` with the recap of what changed on each host.

The same functions run the roles against the role tests' machines (provisioning/lab/machines/machines.py) and
against the target's hosts: only the inventory differs.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from urllib.parse import urlsplit

import yaml

from boutique_suite.run.targets import REPORTS, Target
from provisioning.layer import LayerState, broken

ANSIBLE_DIR = Path(__file__).resolve().parent / "ansible"
# The target file's host roles -> the inventory's groups (nodes = control_plane + workers).
GROUP_OF_ROLE = {
    "gitlab": "platform",
    "registry": "platform",
    "runner": "platform",
    "control-plane": "control_plane",
    "worker": "workers",
}
GROUPS = ("platform", "control_plane", "workers")


class PlaybookError(Exception):
    """ansible-playbook could not run or a host failed; the message names the host and the task."""


@dataclass(frozen=True)
class InventoryHost:
    name: str
    address: str
    user: str
    groups: tuple[str, ...]


@dataclass(frozen=True)
class Ssh:
    port: int = 22
    private_key_file: str | None = None
    known_hosts_file: str | None = None  # None: the user's own known_hosts


def inventory(hosts: list[InventoryHost], ssh: Ssh, variables: dict | None = None) -> dict:
    """An Ansible YAML inventory: one group per role, ``nodes`` holding the cluster's groups."""
    common = {"ansible_port": ssh.port, **(variables or {})}
    if ssh.private_key_file:
        common["ansible_ssh_private_key_file"] = ssh.private_key_file
    if ssh.known_hosts_file:
        common["ansible_ssh_common_args"] = f"-o UserKnownHostsFile={ssh.known_hosts_file}"
    children: dict[str, dict] = {group: {"hosts": {}} for group in GROUPS}
    for host in hosts:
        for group in host.groups:
            children[group]["hosts"][host.name] = {"ansible_host": host.address, "ansible_user": host.user}
    children["nodes"] = {"children": {"control_plane": {}, "workers": {}}}
    return {"all": {"vars": common, "children": children}}


def target_hosts(target: Target) -> list[InventoryHost]:
    return [
        InventoryHost(
            name,
            str(host.ip),
            host.ssh_user,
            tuple(dict.fromkeys(GROUP_OF_ROLE[role] for role in host.roles)),
        )
        for name, host in target.hosts.items()
    ]


def hosts_in(target: Target, group: str) -> list[str]:
    """The target's hosts in one inventory group (platform, control_plane, workers)."""
    return [host.name for host in target_hosts(target) if group in host.groups]


def target_variables(target: Target) -> dict:
    """What the roles need from the target file (names, registry CA, where the kubeconfig goes)."""
    variables: dict = {}
    if target.gitlab:
        gitlab_host = urlsplit(target.gitlab.url).hostname or ""
        variables |= {
            "gitlab_host": gitlab_host,
            "registry_host": target.gitlab.registry,
            # the plan's name of the mini PC, and GitLab's and the registry's names
            "platform_names": sorted({"gitlab", gitlab_host, target.gitlab.registry}),
        }
        ca = Path(target.gitlab.ca_file).expanduser() if target.gitlab.ca_file else None
        if ca and ca.is_file():
            variables["containerd_registry_ca_pem"] = ca.read_text()
    if target.cluster and target.cluster.kubeconfig:
        variables["kubeadm_kubeconfig_dest"] = str(Path(target.cluster.kubeconfig).expanduser())
    return variables


def target_inventory(target: Target) -> dict:
    ssh = target.ssh
    key_env = ssh.private_key_file_env if ssh else None
    key = os.environ.get(key_env) if key_env else None
    if key_env and not key:
        raise PlaybookError(f"ssh.private_key_file_env: the environment variable {key_env} is not set")
    known = os.path.expanduser(ssh.known_hosts_file) if ssh and ssh.known_hosts_file else None
    settings = Ssh(port=ssh.port if ssh else 22, private_key_file=key, known_hosts_file=known)
    return inventory(target_hosts(target), settings, target_variables(target) | target.ansible)


@dataclass
class Recap:
    """What one ansible-playbook run did, per host (the boutique_report callback's record)."""

    stats: dict[str, dict[str, int]]
    changed_tasks: dict[str, list[str]] = field(default_factory=dict)
    failures: list[str] = field(default_factory=list)
    log: Path | None = None

    @property
    def changed(self) -> int:
        return sum(host.get("changed", 0) for host in self.stats.values())

    @property
    def ok(self) -> bool:
        return not self.failures and all(
            not host.get("failures") and not host.get("unreachable") for host in self.stats.values()
        )

    def expect_ok(self) -> None:
        if not self.ok:
            raise PlaybookError("; ".join(self.failures) + f" (log {self.log})")


def run(playbook: str, inventory_data: dict, workdir: Path, *args: str, timeout: float = 1800) -> Recap:
    """Run ``provisioning/ansible/<playbook>`` against the inventory. The output goes to
    ``workdir/<playbook>.log``, the run's record to ``workdir/<playbook>.json``."""
    binary = shutil.which("ansible-playbook") or _venv_binary("ansible-playbook")
    if binary is None:
        raise PlaybookError("ansible-playbook is not installed: run `./run setup` (ansible-core from PyPI)")
    workdir.mkdir(parents=True, exist_ok=True)
    inventory_file = workdir / "inventory.yml"
    inventory_file.write_text(yaml.safe_dump(inventory_data, sort_keys=False))
    stem = Path(playbook).stem
    record, log = workdir / f"{stem}.json", workdir / f"{stem}.log"
    record.unlink(missing_ok=True)
    env = os.environ | {
        "ANSIBLE_CONFIG": str(ANSIBLE_DIR / "ansible.cfg"),
        "BOUTIQUE_ANSIBLE_REPORT": str(record),
        "ANSIBLE_NOCOLOR": "1",
    }
    argv = [binary, "-i", str(inventory_file), str(ANSIBLE_DIR / playbook), *args]
    try:
        with log.open("w") as out:
            proc = subprocess.run(
                argv, stdout=out, stderr=subprocess.STDOUT, env=env, timeout=timeout, cwd=ANSIBLE_DIR
            )
    except subprocess.TimeoutExpired:
        raise PlaybookError(f"{playbook} did not finish within {timeout:g}s (log {log})") from None
    if not record.exists():
        tail = " | ".join(log.read_text(errors="replace").strip().splitlines()[-3:])
        raise PlaybookError(f"{playbook}: ansible-playbook exited {proc.returncode} before running: {tail}")
    data = json.loads(record.read_text())
    failures = [f"{f['host']}: {f['task']!r}: {f['message']}" for f in data["failures"]]
    recap = Recap(data["stats"], data["changed_tasks"], failures, log)
    if proc.returncode != 0 and recap.ok:
        recap.failures.append(f"ansible-playbook exited {proc.returncode} (log {log})")
    return recap


def apply(target: Target, playbook: str, *args: str) -> Recap:
    """Run one phase's playbook against the target's hosts (output under reports/ansible); raises
    PlaybookError naming the first host and task that failed."""
    recap = run(playbook, target_inventory(target), REPORTS / "ansible", *args)
    recap.expect_ok()
    return recap


def build_layer(
    target: Target,
    phase: int,
    name: str,
    playbook: str,
    check: Callable[[Target], LayerState],
    hosts: list[str],
) -> LayerState:
    """An on-prem layer Ansible builds: ready as it is, or ``playbook`` run against ``hosts`` (all of which
    must answer over ssh) and the check made again. Broken with the first missing thing otherwise."""
    from boutique_suite.clients import hosts as host_checks

    state = check(target)
    if state.ready:
        return state
    if not hosts:
        raise broken(
            phase,
            name,
            f"{state.detail}; the target lists no hosts, so the suite does not build this layer: "
            "fix it on the site, or list the hosts in the target file for Ansible to build it",
        )
    if why := host_checks.unreachable(target, only=hosts):
        detail = why if state.detail == why else f"{state.detail}; and Ansible cannot build it: {why}"
        raise broken(phase, name, detail)
    try:
        recap = apply(target, playbook)
    except PlaybookError as exc:
        raise broken(phase, name, str(exc)) from None
    state = check(target)
    if not state.ready:
        raise broken(phase, name, f"after {playbook}: {state.detail}")
    return replace(state, changed=recap.changed > 0)


def _venv_binary(name: str) -> str | None:
    """ansible-playbook beside the running interpreter (the suite's venv is not always on PATH)."""
    candidate = Path(sys.executable).parent / name
    return str(candidate) if candidate.exists() else None
