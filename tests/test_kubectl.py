"""The one kubectl runner, with a stand-in program in kubectl's place (no cluster)."""

from __future__ import annotations

import sys

import pytest

from boutique_suite.clients import kubectl

FAKE = [sys.executable, "-c", "import sys, time; exec(sys.argv[1])"]


def test_stdout_of_a_command_that_succeeds_and_stdin_reaches_it() -> None:
    runner = kubectl.Kubectl(FAKE)
    assert runner.run("print(sys.stdin.read().upper(), end='')", stdin="applied") == "APPLIED"
    assert runner("print('called', end='')") == "called"


def test_a_refusal_is_a_kubectl_error_with_its_own_message() -> None:
    with pytest.raises(kubectl.KubectlError, match=r"^kubectl sys.exit\('forbidden'\): forbidden$"):
        kubectl.Kubectl(FAKE).run("sys.exit('forbidden')")


def test_a_command_that_outlives_its_timeout_is_a_kubectl_error() -> None:
    with pytest.raises(kubectl.KubectlError, match=r"did not finish in 0.3s"):
        kubectl.Kubectl(FAKE).run("time.sleep(10)", timeout=0.3)


def test_the_timeout_convention() -> None:
    assert kubectl.timeout_for(("get", "nodes")) == kubectl.TIMEOUT
    assert kubectl.timeout_for(("wait", "node", "--all", "--timeout=90s")) == 90 + kubectl.GRACE
    assert kubectl.timeout_for(("rollout", "status", "--timeout=5s"), timeout=30) == 30


def test_the_labs_runner_is_the_pinned_kubectl_with_the_labs_kubeconfig() -> None:
    from provisioning.lab import build, layout
    from provisioning.lab import kubectl as lab_kubectl

    argv = lab_kubectl.lab().argv
    assert argv == [str(build.bin_dir("kubernetes") / "kubectl"), "--kubeconfig", str(layout.KUBECONFIG)]


def test_a_targets_runner_is_its_kubectl_with_its_kubeconfig_and_context() -> None:
    from boutique_suite.context import sites
    from boutique_suite.run import targets
    from provisioning.lab import build

    lab = targets.load("lab")
    assert sites.kubectl_of(lab).argv == [
        str(build.bin_dir("kubernetes") / "kubectl"),
        "--kubeconfig",
        str(lab.cluster.kubeconfig_path),
        "--context",
        lab.cluster.context,
    ]
