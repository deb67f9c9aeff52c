"""One version per component, everywhere (provisioning/pins.py): the lab's pins, on-prem's (gitops-repo's
charts and values, install.yaml, the roles, kubeadm) and the static checks' CRD schemas agree; a chart that
is not the one its source module ships, or a values tag that moves one side, is caught."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import yaml

from provisioning import pins
from provisioning.gitops import ROOT as GITOPS

# What cannot be compared here, and why; a component that becomes comparable leaves this list.
NOT_COMPARED = {
    "kube-state-metrics",  # on-prem: set by kube-prometheus-stack, whose chart cannot be read offline
    "prometheus",
    "alertmanager",
    "ingress-nginx",  # not in the lab: its controller's image cannot be built here
    "loki",  # on-prem only (AGPL)
    "promtail",
}


@pytest.fixture(scope="module")
def table() -> list[pins.Pin]:
    return pins.table()


def test_every_component_the_lab_and_on_prem_both_run_has_one_version(table: list[pins.Pin]) -> None:
    apart = [p for p in table if not p.agrees]
    assert not apart, pins.markdown(apart)
    assert {p.component for p in table if p.compared} >= {
        "kubernetes", "argo-cd", "coredns", "metallb", "sealed-secrets", "metrics-server",
    }  # fmt: skip


def test_what_is_not_compared_is_the_reviewed_list(table: list[pins.Pin]) -> None:
    assert {p.component for p in table if not p.compared} == NOT_COMPARED


def test_every_chart_gitops_repo_deploys_is_in_the_table(table: list[pins.Pin]) -> None:
    apps = (path.stem for path in (GITOPS / "platform" / "apps").glob("*.yaml"))
    charts = {app for app in apps if pins.chart_source(app)}
    assert "metallb" in charts and "argocd-ingress" not in charts
    covered = {p.component for p in table} | {"kube-prometheus-stack"}  # its components are rows of their own
    assert charts <= covered, sorted(charts - covered)


@pytest.fixture
def content(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    copy = tmp_path / "gitops"
    shutil.copytree(GITOPS / "platform", copy / "platform")
    monkeypatch.setattr(pins, "GITOPS", copy)
    return copy


def _edit(path: Path, change) -> None:  # type: ignore[no-untyped-def]
    doc = yaml.safe_load(path.read_text())
    change(doc)
    path.write_text(yaml.safe_dump(doc))


def test_a_values_tag_that_moves_on_prem_alone_is_a_disagreement(content: Path) -> None:
    _edit(content / "platform/values/sealed-secrets.yaml", lambda v: v["image"].update(tag="0.41.0"))
    pin = next(p for p in pins.table() if p.component == "sealed-secrets")
    assert (pin.onprem, pin.agrees) == ("0.41.0", False)
    assert "image.tag of platform/values/sealed-secrets.yaml" in pin.onprem_from


def test_a_chart_other_than_the_one_the_source_module_ships_is_a_disagreement(content: Path) -> None:
    def bump(app: dict) -> None:
        next(s for s in app["spec"]["sources"] if "chart" in s)["targetRevision"] = "0.16.2"

    _edit(content / "platform/apps/metallb.yaml", bump)
    pin = next(p for p in pins.table() if p.component == "metallb")
    assert not pin.agrees
    assert "go.universe.tf/metallb@v0.15.2 ships chart 0.15.2" in pin.onprem_from


def test_without_a_tag_on_prem_runs_the_charts_app_version(content: Path) -> None:
    _edit(content / "platform/values/metrics-server.yaml", lambda v: v.pop("image"))
    pin = next(p for p in pins.table() if p.component == "metrics-server")
    assert pin.onprem == "0.7.2" and not pin.agrees  # the chart metrics-server v0.8.0 ships says 0.7.2
    assert pin.onprem_from.endswith("its appVersion")


def test_the_command_prints_the_table_and_exits_0_when_every_pin_agrees(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert pins.main() == 0
    out = capsys.readouterr().out
    assert "| metallb | v0.15.2 |" in out and "not compared" in out
