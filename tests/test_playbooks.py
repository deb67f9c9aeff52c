"""provisioning/ansible and provisioning/playbooks.py without machines: the inventory made from the target
file, ansible-lint and syntax checks of every playbook, the pinned versions, and a run against a host
that does not answer (a clear failure naming it). The on-prem layer chain with no host reachable gives
clear reasons, once, and no errors."""

from __future__ import annotations

import socket
import subprocess
import tomllib
from pathlib import Path

import pytest
import yaml

from boutique_suite.run import targets
from provisioning import LayerRunner, playbooks
from provisioning.layer import LayerUnavailable

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "targets" / "onprem.example.yaml"
VENV_BIN = Path(playbooks.sys.executable).parent


def closed_port() -> int:
    """A loopback port nothing listens on (bound, then released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def onprem_on_loopback(tmp_path: Path) -> targets.Target:
    """The example target filled in, every host on a loopback address where no sshd listens."""
    data = yaml.safe_load(EXAMPLE.read_text())
    for offset, host in enumerate(data["hosts"].values(), start=2):
        host["ip"] = f"127.0.0.{offset}"
    port = closed_port()
    data["ssh"] = {"port": port}
    data["gitlab"]["url"] = f"https://127.0.0.1:{port}"
    data["cluster"]["kubeconfig"] = str(tmp_path / "no-kubeconfig")
    data["gateway"] = None
    path = tmp_path / "onprem.yaml"
    path.write_text(yaml.safe_dump({k: v for k, v in data.items() if v is not None}))
    return targets.load(str(path))


def test_the_inventory_groups_the_target_hosts_by_role(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ONPREM_SSH_KEY_FILE", "/keys/id_ed25519")
    inventory = playbooks.target_inventory(targets.load(str(EXAMPLE)))["all"]
    children = inventory["children"]
    assert list(children["platform"]["hosts"]) == ["mini-pc"]
    assert list(children["control_plane"]["hosts"]) == ["k8s-master"]
    assert list(children["workers"]["hosts"]) == ["k8s-worker1", "k8s-worker2"]
    assert children["nodes"] == {"children": {"control_plane": {}, "workers": {}}}
    assert children["workers"]["hosts"]["k8s-worker2"] == {
        "ansible_host": "192.168.10.13",
        "ansible_user": "ubuntu",
    }
    assert inventory["vars"]["ansible_ssh_private_key_file"] == "/keys/id_ed25519"
    assert inventory["vars"]["platform_names"] == ["gitlab", "gitlab.local", "registry.local"]
    assert inventory["vars"]["registry_host"] == "registry.local"


def test_an_unset_key_variable_is_named(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("ONPREM_SSH_KEY_FILE", raising=False)
    with pytest.raises(playbooks.PlaybookError, match="ONPREM_SSH_KEY_FILE is not set"):
        playbooks.target_inventory(targets.load(str(EXAMPLE)))


def test_the_registry_ca_is_read_from_the_target(tmp_path: Path) -> None:
    data = yaml.safe_load(EXAMPLE.read_text())
    (tmp_path / "ca.crt").write_text("-----BEGIN CERTIFICATE-----\nabc\n-----END CERTIFICATE-----\n")
    data["gitlab"]["ca_file"] = str(tmp_path / "ca.crt")
    (tmp_path / "t.yaml").write_text(yaml.safe_dump(data))
    variables = playbooks.target_variables(targets.load(str(tmp_path / "t.yaml")))
    assert variables["containerd_registry_ca_pem"].startswith("-----BEGIN CERTIFICATE-----")


def test_the_roles_are_ansible_lint_clean() -> None:
    proc = subprocess.run(
        [str(VENV_BIN / "ansible-lint"), "--offline", "--nocolor", "-q", "-f", "pep8", "."],
        cwd=playbooks.ANSIBLE_DIR,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-500:]


@pytest.mark.parametrize("playbook", ["site.yml", "phase0.yml", "phase1.yml", "phase2.yml"])
def test_every_playbook_parses(playbook: str) -> None:
    proc = subprocess.run(
        [str(VENV_BIN / "ansible-playbook"), "-i", "localhost,", "--syntax-check", playbook],
        cwd=playbooks.ANSIBLE_DIR,
        env={"ANSIBLE_CONFIG": str(playbooks.ANSIBLE_DIR / "ansible.cfg"), "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr[-1000:]


def test_the_kubernetes_version_is_the_labs() -> None:
    pinned = yaml.safe_load((playbooks.ANSIBLE_DIR / "group_vars" / "all" / "versions.yml").read_text())
    lab = tomllib.loads((ROOT / "provisioning" / "lab" / "versions.toml").read_text())
    assert f"v{pinned['kubernetes_version']}" == lab["kubernetes"]["version"]
    assert pinned["kubernetes_apt_package_version"].startswith(pinned["kubernetes_version"])
    assert pinned["kubernetes_version"].startswith(pinned["kubernetes_apt_channel"].lstrip("v"))


def test_a_host_that_does_not_answer_is_named(tmp_path: Path) -> None:
    host = playbooks.InventoryHost("k8s-master", "127.0.0.1", "root", ("control_plane",))
    inventory = playbooks.inventory([host], playbooks.Ssh(port=closed_port()))
    recap = playbooks.run("phase0.yml", inventory, tmp_path)
    assert not recap.ok and recap.stats["k8s-master"]["unreachable"] == 1
    with pytest.raises(playbooks.PlaybookError, match=r"k8s-master: 'Gathering Facts'.*Connection refused"):
        recap.expect_ok()
    assert recap.log is not None and "UNREACHABLE" in recap.log.read_text()


def test_the_onprem_chain_says_why_once_with_no_host_reachable(tmp_path: Path) -> None:
    runner = LayerRunner(onprem_on_loopback(tmp_path))
    reasons = {}
    for phase in range(8):
        with pytest.raises(LayerUnavailable) as caught:
            runner.require(phase)
        reasons[phase] = str(caught.value)
    first = "k8s-master (127.0.0.3) does not answer over ssh"
    assert reasons[0].startswith("layer 0 (foundation) broken: ") and first in reasons[0]
    for phase in (2, 3, 4, 5, 6, 7):
        assert first in reasons[phase] or "layer 1 (platform)" in reasons[phase], reasons[phase]
        assert reasons[phase].count("needed by layer") == 1, reasons[phase]
    assert reasons[2].endswith("(needed by layer 2, cluster)")
    assert "layer 1 (platform) broken" in reasons[1]
