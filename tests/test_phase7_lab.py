"""Layer 7 (advanced): the lab's ensure is idempotent; bad input gives one clear line; the Terraform and
Locust reasons; what the HPA and Sealed Secrets checks read from gitops-repo."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from boutique_suite.actions import sealing
from boutique_suite.expectations import autoscaling
from boutique_suite.run import targets
from provisioning import phase7_advanced
from provisioning.lab import build
from provisioning.layer import LayerUnavailable

GITOPS = Path(__file__).resolve().parent.parent / "provisioning" / "gitops"


@pytest.fixture
def no_kubeseal(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    monkeypatch.setattr(build, "bin_dir", lambda name: tmp_path / f"{name}-missing" / "bin")
    return tmp_path


# --- offline ---------------------------------------------------------------------------------------


def test_kubeseal_missing_names_the_fix(no_kubeseal: Path) -> None:
    with pytest.raises(LayerUnavailable) as err:
        phase7_advanced.kubeseal_binary()
    message = str(err.value)
    assert "\n" not in message and "kubeseal is missing" in message and "./run setup" in message


def test_sealing_without_kubeseal_names_the_fix(no_kubeseal: Path) -> None:
    with pytest.raises(sealing.SealingError, match=r"kubeseal is missing at .*: run `./run setup`"):
        sealing.seal_run_id(targets.load("lab"), "boutique-dev", "suite-sealed-x", "x")


def test_onprem_kubeseal_not_on_path(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", "/nonexistent")
    onprem = targets.load("targets/onprem.example.yaml")
    with pytest.raises(sealing.SealingError, match="kubeseal is not on PATH: install kubeseal"):
        sealing.kubeseal(onprem)


def test_onprem_unreachable_cluster_is_one_line(tmp_path: Path) -> None:
    data = yaml.safe_load((targets.TARGETS_DIR / "onprem.example.yaml").read_text())
    data["cluster"]["kubeconfig"] = str(tmp_path / "no-such-kubeconfig")
    path = tmp_path / "onprem.yaml"
    path.write_text(yaml.safe_dump(data))
    with pytest.raises(LayerUnavailable) as err:
        phase7_advanced.ensure(targets.load(str(path)))
    assert str(err.value).startswith("layer 7 (advanced) broken: kubeconfig ") and "\n" not in str(err.value)


def test_onprem_controller_location_is_the_charts() -> None:
    assert phase7_advanced.controller_location() == ("kube-system", "sealed-secrets-controller")


def test_dev_application_ignores_the_replicas_of_the_hpa_deployments() -> None:
    app = yaml.safe_load((GITOPS / "platform" / "apps" / "online-boutique-dev.yaml").read_text())
    hpas = [d for d in yaml.safe_load_all((GITOPS / "components" / "autoscaling" / "hpa.yaml").read_text())]
    autoscaling.expect_replicas_ignored(app, [h["spec"]["scaleTargetRef"]["name"] for h in hpas])
    with pytest.raises(AssertionError, match=r"does not ignore the replicas of \['adservice'\]"):
        autoscaling.expect_replicas_ignored(app, ["frontend", "adservice"])


def test_digest_ignores_key_order_and_hides_the_value() -> None:
    a = sealing.digest({"a": "MQ==", "b": "Mg=="})
    assert a == sealing.digest({"b": "Mg==", "a": "MQ=="}) and "MQ==" not in a


# --- on the running lab ----------------------------------------------------------------------------


@pytest.mark.lab
def test_lab_ensure_twice_changes_nothing() -> None:
    lab = targets.load("lab")
    first = phase7_advanced.ensure(lab)
    again = phase7_advanced.ensure(lab)
    assert first.ready and again.ready
    assert not again.changed, again.detail
    assert again.components["sealed-secrets-controller"] == first.components["sealed-secrets-controller"]
    assert "metrics.k8s.io" in again.components


def test_a_plain_secret_in_gitops_repo_is_caught(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    import contextlib
    import shutil

    repo = tmp_path / "gitops-repo"
    shutil.copytree(GITOPS, repo, ignore=shutil.ignore_patterns("checks", "*.py", "__pycache__"))
    (repo / "overlays" / "dev" / "leak.yaml").write_text(
        "apiVersion: v1\nkind: Secret\nmetadata: {name: leak}\nstringData: {password: planted}\n"
    )

    @contextlib.contextmanager
    def checkout(target: targets.Target):  # type: ignore[no-untyped-def]
        yield repo, "planted copy"

    monkeypatch.setattr(sealing, "gitops_checkout", checkout)
    with pytest.raises(AssertionError, match=r"plain Secret manifests in \['overlays/dev/leak.yaml'\]"):
        sealing.expect_only_sealed_secrets(targets.load("lab"))
