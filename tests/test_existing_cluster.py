"""An onprem target without ``hosts:``: a cluster that exists already. The suite checks layers 0-2 through
the target's kubeconfig only: it never opens ssh and never runs Ansible, a host scenario skips with the
reason, and a cluster that is not Ready is broken with what to do, not rebuilt. The last test points such a
target at the running lab's cluster."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from boutique_suite.clients import hosts
from boutique_suite.run import targets
from boutique_suite.run.touches import Touches
from provisioning import phase0_foundation, phase1_platform, phase2_cluster, playbooks, probe_image
from provisioning.lab import manager
from provisioning.layer import LayerBroken, LayerState

EXAMPLE = Path(__file__).resolve().parent.parent / "targets" / "onprem.example.yaml"


def existing_cluster(tmp_path: Path, kubeconfig: str = "/nonexistent/kubeconfig", context: str = "x") -> Path:
    """The on-prem example without its hosts and ssh, its kubeconfig at ``kubeconfig``."""
    data = yaml.safe_load(EXAMPLE.read_text())
    del data["hosts"], data["ssh"]
    data["cluster"] = {"kubeconfig": kubeconfig, "context": context}
    path = tmp_path / "existing.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


@pytest.fixture
def no_ssh(monkeypatch: pytest.MonkeyPatch) -> None:
    """Any ssh connection or Ansible run fails the test."""

    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("ssh or Ansible was used for a target without hosts")

    monkeypatch.setattr(hosts, "testinfra_host", refuse)
    monkeypatch.setattr(playbooks, "apply", refuse)


def test_an_onprem_target_without_hosts_loads_and_builds_nothing(tmp_path: Path) -> None:
    target = targets.load(str(existing_cluster(tmp_path)))
    assert target.kind == "onprem" and not target.hosts
    assert not target.builds_hosts
    assert targets.load(str(EXAMPLE)).builds_hosts and targets.load("lab").builds_hosts


def test_some_hosts_but_not_all_is_still_refused(tmp_path: Path) -> None:
    data = yaml.safe_load(EXAMPLE.read_text())
    del data["hosts"]["k8s-worker2"]
    path = tmp_path / "t.yaml"
    path.write_text(yaml.safe_dump(data))
    with pytest.raises(targets.TargetError, match=r"needs k8s-worker2 \(or no hosts: at all"):
        targets.load(str(path))


def test_host_scenarios_skip_with_the_reason(tmp_path: Path) -> None:
    target = targets.load(str(existing_cluster(tmp_path)))
    hosts_provision = target.provision(Touches.hosts)
    assert hosts_provision.mode == "absent"
    assert "lists no hosts" in hosts_provision.why and "never over ssh" in hosts_provision.why
    assert target.provision(Touches.control_plane).mode == "real"  # what the file says about the rest


def test_layer_0_is_ready_without_opening_ssh(tmp_path: Path, no_ssh: None) -> None:
    target = targets.load(str(existing_cluster(tmp_path)))
    state = phase0_foundation.ensure_onprem(target)
    assert state.ready and "lists no hosts" in state.detail


def test_layer_1_runs_no_playbook(tmp_path: Path, no_ssh: None, monkeypatch: pytest.MonkeyPatch) -> None:
    target = targets.load(str(existing_cluster(tmp_path)))
    gitlab = LayerState(1, "platform", True, "GitLab checked")
    monkeypatch.setattr(phase1_platform, "_gitlab", lambda target, change: gitlab)
    monkeypatch.setattr(probe_image, "ensure_on_target", lambda target: None)
    assert phase1_platform.ensure_onprem(target).ready


def test_a_cluster_that_does_not_answer_is_broken_not_rebuilt(tmp_path: Path, no_ssh: None) -> None:
    target = targets.load(str(existing_cluster(tmp_path)))
    with pytest.raises(LayerBroken) as raised:
        phase2_cluster.ensure_onprem(target)
    message = str(raised.value)
    assert message.startswith("layer 2 (cluster) broken: ")
    assert "/nonexistent/kubeconfig" in message
    assert "the target lists no hosts, so the suite does not build this layer" in message


@pytest.mark.lab
def test_the_running_labs_cluster_checks_ready_as_an_existing_cluster(tmp_path: Path, no_ssh: None) -> None:
    manager.up()
    lab = targets.load("lab")
    path = existing_cluster(tmp_path, str(lab.cluster.kubeconfig_path), lab.cluster.context)
    target = targets.load(str(path))
    state = phase2_cluster.ensure_onprem(target)
    assert state.ready, state.detail
    assert set(state.components) == set(phase2_cluster.NODES), state.components
    assert phase0_foundation.ensure_onprem(target).ready


def test_checking_an_existing_cluster_needs_no_gitlab_layer(tmp_path: Path) -> None:
    from boutique_suite.context.sites import site_for

    existing = targets.load(str(existing_cluster(tmp_path)))
    assert site_for(existing).layer_needs(2) == ()
    assert site_for(targets.load(str(EXAMPLE))).layer_needs(2) == (0, 1), "building the nodes needs the CA"
