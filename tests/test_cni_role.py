"""The cni role installs Calico with kubeadm's pod range: its substitution is run on Calico's own manifest
(the ``release-v3.28`` source the Go module proxy serves, after ``v3.28.5``), the same way Ansible's
``replace`` module runs it, and the manifest's images are the release the role pins."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from provisioning import playbooks

ROLE = playbooks.ANSIBLE_DIR / "roles" / "cni"
# The Calico source the module proxy serves: release-v3.28 after v3.28.5 (its manifests name v3.28.5).
CALICO_MODULE = "github.com/projectcalico/calico@v1.11.0-cni-plugin.0.20250813170300-a0db560f0520"


def role_vars() -> dict:
    versions = yaml.safe_load((playbooks.ANSIBLE_DIR / "group_vars" / "all" / "versions.yml").read_text())
    return versions | yaml.safe_load((ROLE / "defaults" / "main.yml").read_text())


def replace_task() -> dict:
    tasks = yaml.safe_load((ROLE / "tasks" / "main.yml").read_text())
    return next(t["ansible.builtin.replace"] for t in tasks if "ansible.builtin.replace" in t)


def substitute(manifest: str, cidr: str) -> str:
    """What ansible.builtin.replace does with the role's regexp (re.MULTILINE, Python's re.sub)."""
    task = replace_task()
    replacement = task["replace"].replace("{{ cni_pod_network_cidr }}", cidr)
    return re.compile(task["regexp"], re.MULTILINE).sub(replacement, manifest)


@pytest.fixture(scope="module")
def calico_manifest() -> str:
    go = shutil.which("go")
    assert go, "Go is needed to read Calico's manifest from the module proxy: run ./run setup"
    proc = subprocess.run(
        [go, "mod", "download", "-json", CALICO_MODULE], capture_output=True, text=True, timeout=600, cwd="/"
    )
    assert proc.returncode == 0, proc.stdout[-1000:] + proc.stderr[-1000:]
    return (Path(json.loads(proc.stdout)["Dir"]) / "manifests" / "calico.yaml").read_text()


def calico_node_env(manifest: str) -> dict[str, object]:
    docs = [d for d in yaml.safe_load_all(manifest) if d]
    node = next(d for d in docs if d["kind"] == "DaemonSet" and d["metadata"]["name"] == "calico-node")
    container = next(c for c in node["spec"]["template"]["spec"]["containers"] if c["name"] == "calico-node")
    return {e["name"]: e.get("value") for e in container["env"]}


def test_the_pool_cidr_becomes_kubeadms_pod_range(calico_manifest: str) -> None:
    assert "CALICO_IPV4POOL_CIDR" not in calico_node_env(calico_manifest)  # commented out upstream
    done = substitute(calico_manifest, "10.244.0.0/16")
    assert calico_node_env(done)["CALICO_IPV4POOL_CIDR"] == "10.244.0.0/16"
    assert substitute(done, "10.244.0.0/16") == done  # a second run changes nothing


def test_the_manifests_images_are_the_pinned_release(calico_manifest: str) -> None:
    version = role_vars()["calico_version"]
    images = set(re.findall(r"image: (\S+)", calico_manifest))
    assert images == {f"docker.io/calico/{name}:{version}" for name in ("cni", "node", "kube-controllers")}


def test_the_role_and_kubeadm_read_the_same_pod_range() -> None:
    kubeadm = yaml.safe_load(
        (playbooks.ANSIBLE_DIR / "roles" / "kubeadm" / "defaults" / "main.yml").read_text()
    )
    assert role_vars()["cni_pod_network_cidr"] == kubeadm["kubeadm_pod_network_cidr"]
    assert "calico_version" in role_vars()["cni_manifest_url"]


def test_a_manifest_without_the_commented_pool_is_left_unchanged_and_the_check_task_would_fail() -> None:
    text = "env:\n  - name: CALICO_IPV4POOL_IPIP\n    value: Always\n"
    assert substitute(text, "10.244.0.0/16") == text
    tasks = yaml.safe_load((ROLE / "tasks" / "main.yml").read_text())
    check = next(t for t in tasks if t["name"].startswith("The pool CIDR is set"))
    assert (
        "grep -c" in check["ansible.builtin.command"]
        and "cni_pod_network_cidr" in check["ansible.builtin.command"]
    )
