"""Each known failure of the platform (the plan's troubleshooting list) is recognised on its planted fault
and on nothing else. Where the fault can be planted here it is (kubectl and the Kubernetes client asked for a
context that does not exist, kubectl with no kubeconfig); where it cannot (GitLab's registry, a node with a
skewed clock, Argo CD refused by GitLab), the text is what the real component prints, recorded."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from boutique_suite.clients.kube import ClusterUnreachable, connect
from boutique_suite.reporting import diagnosis, nightly

# What the real components print, one per known failure (containerd's pull errors through the kubelet's
# events, GitLab's registry, Argo CD's ComparisonError, MetalLB's Service events, Go's crypto/x509).
RECORDED = {
    "registry refuses the login": (
        'Failed to pull image "gitlab.local:5050/boutique/frontend:5f3c2a1b": failed to pull and unpack '
        'image "gitlab.local:5050/boutique/frontend:5f3c2a1b": failed to resolve reference: pull access '
        "denied, repository does not exist or may require authorization: server message: insufficient_scope"
    ),
    "the node does not trust the registry's certificate": (
        'Failed to pull image "registry.local/boutique/frontend:5f3c2a1b": failed to do request: Head '
        '"https://registry.local/v2/boutique/frontend/manifests/5f3c2a1b": tls: failed to verify '
        "certificate: x509: certificate signed by unknown authority"
    ),
    "Argo CD cannot authenticate to gitops-repo": (
        "ComparisonError: Failed to load target state: failed to generate manifest for source 1 of 1: rpc "
        "error: code = Unknown desc = failed to list refs: authentication required"
    ),
    "the storefront is not reachable through Ingress / MetalLB": (
        'AllocationFailed: Failed to allocate IP for "boutique-dev/frontend-external": no available IPs'
    ),
    "clocks out of sync": (
        'Get "https://gitlab.local/api/v4/projects": tls: failed to verify certificate: x509: certificate '
        "has expired or is not yet valid: current time 2026-12-06T03:00:00Z is before 2026-12-06T03:05:00Z"
    ),
}
DOCKER_LOGIN = "Error response from daemon: Get https://gitlab.local:5050/v2/: denied: access forbidden"

# Failures that are not any of the known ones: each must get no diagnosis.
UNRELATED = (
    'layer 4 (GitOps) broken: online-boutique-dev: sync Synced, health Degraded; Deployment "frontend" '
    "exceeded its progress deadline",
    "AssertionError: Deployment frontend: 0/1 replicas available after 60s",
    "Readiness probe failed: HTTP probe failed with statuscode: 404",
    "Application online-boutique-dev Synced and Healthy: still pending after 180s: sync OutOfSync",
    "alert BoutiquePodCrashLooping for crash-probe: still pending after 300s",
)


def names(text: str) -> list[str]:
    return [known.name for known in diagnosis.KNOWN if known.matches(text)]


@pytest.mark.parametrize("name", RECORDED)
def test_a_recorded_failure_gets_its_own_diagnosis_and_no_other(name: str) -> None:
    assert names(RECORDED[name]) == [name]


def test_a_docker_login_refused_by_gitlabs_registry_is_the_registry() -> None:
    assert names(DOCKER_LOGIN) == ["registry refuses the login"]


@pytest.mark.parametrize("text", UNRELATED)
def test_an_unrelated_failure_gets_no_diagnosis(text: str) -> None:
    assert diagnosis.diagnose([text]) is None


KUBECONFIG = """apiVersion: v1
kind: Config
clusters:
- {name: lab, cluster: {server: "https://127.0.0.1:1"}}
contexts:
- {name: kwok-boutique-lab, context: {cluster: lab, user: admin}}
users:
- {name: admin, user: {token: not-a-secret}}
current-context: kwok-boutique-lab
"""


def kubectl(*args: str, env: dict[str, str] | None = None) -> str:
    proc = subprocess.run(["kubectl", *args], capture_output=True, text=True, timeout=30, env=env)
    assert proc.returncode != 0
    return proc.stderr


def test_kubectl_after_kubeadm_without_its_kubeconfig_is_the_wrong_context(tmp_path: Path) -> None:
    """Planted for real: kubectl run where no kubeconfig was copied (kubeadm's admin.conf is elsewhere)."""
    stderr = kubectl("get", "nodes", env={"HOME": str(tmp_path), "PATH": "/usr/bin:/bin"})
    found = diagnosis.diagnose([stderr])
    assert found is not None and found[0].name == "kubectl points at the wrong cluster or context"
    assert "localhost:8080" in found[1]


def test_a_context_that_does_not_exist_is_the_wrong_context(tmp_path: Path) -> None:
    """Planted for real, twice: kubectl and the suite's own Kubernetes client asked for kubeadm's default
    context in a kubeconfig that does not have it."""
    config = tmp_path / "kubeconfig"
    config.write_text(KUBECONFIG)
    stderr = kubectl("--kubeconfig", str(config), "--context", "kubernetes-admin@kubernetes", "get", "nodes")
    with pytest.raises(ClusterUnreachable) as caught:
        connect(config, "kubernetes-admin@kubernetes", run_id="x")
    for text in (stderr, str(caught.value)):
        assert names(text) == ["kubectl points at the wrong cluster or context"], text


def test_the_diagnosis_reads_cause_fix_prevention_and_the_confirming_command() -> None:
    found = diagnosis.diagnose(["x", RECORDED["clocks out of sync"]])
    assert found is not None
    known, seen = found
    text = known.text(seen)
    assert [line.split(":")[0] for line in text.splitlines()] == [
        "Diagnosis", "Seen", "Cause", "Confirm", "Fix", "Prevention",
    ]  # fmt: skip
    assert "current time 2026-12-06T03:00:00Z" in text
    assert diagnosis.headline(text).startswith("clocks out of sync → fix: run chrony")


def test_the_nightly_summary_names_the_first_diagnosis() -> None:
    known, seen = diagnosis.diagnose([RECORDED["registry refuses the login"]]) or (None, "")
    assert known is not None
    summary = {
        "target": "onprem",
        "finished": "now",
        "scenarios": {
            "a": {"scenario": "Pull", "outcome": "failed", "execution": "real", "diagnosis": known.text(seen)}
        },
    }
    assert "registry refuses the login → fix: reseal" in nightly.message(summary, "r")
