"""One version per component, everywhere: what the lab runs beside what on-prem deploys, each read from where
it is pinned (provisioning/lab/versions.toml, the Ansible roles' versions, gitops-repo's Applications and
values, Argo CD's install.yaml, kubeadm's own constants), and the CRD schemas the static checks use.

A chart gitops-repo deploys comes from the source module the lab builds the same component from: the
Application pins the chart version that module ships, and its values set the image tag when the chart's
``appVersion`` lags behind the tag (Sealed Secrets' and metrics-server's releases ship their previous chart).

``python -m provisioning.pins`` prints the table; tests/test_pins.py fails when two pins disagree.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from provisioning.gitops import ROOT as GITOPS

ANSIBLE_VERSIONS = Path(__file__).resolve().parent / "ansible" / "group_vars" / "all" / "versions.yml"
KUBEADM_CONSTANTS = "cmd/kubeadm/app/constants/constants.go"


@dataclass(frozen=True)
class Chart:
    """A chart gitops-repo deploys, as its component's source module ships it."""

    application: str  # platform/apps/<application>.yaml
    module: str
    path: str  # the chart's directory inside the module
    values: str  # platform/values/<values>.yaml


CHARTS = {
    "metallb": Chart("metallb", "go.universe.tf/metallb", "charts/metallb", "metallb"),
    "sealed-secrets": Chart(
        "sealed-secrets", "github.com/bitnami-labs/sealed-secrets", "helm/sealed-secrets", "sealed-secrets"
    ),
    "metrics-server": Chart(
        "metrics-server", "sigs.k8s.io/metrics-server", "charts/metrics-server", "metrics-server"
    ),
}

# On-prem deploys these through kube-prometheus-stack, whose chart (and the versions it sets) cannot be read
# offline: nothing serves it here. Issue #28 item 1 replaces it with a monitoring stack that renders here.
SET_BY_KUBE_PROMETHEUS_STACK = {"prometheus": "prometheus", "alertmanager": "prometheus-alertmanager"}
KUBE_STATE_METRICS = "kube-state-metrics"  # the lab builds it; on-prem the same chart sets it


@dataclass(frozen=True)
class Pin:
    component: str
    lab: str | None  # None: the lab does not run it
    lab_from: str
    onprem: str | None  # None: not known offline
    onprem_from: str
    schemas: str | None = None  # the CRD schemas the static checks validate against, when it has CRDs

    @property
    def compared(self) -> bool:
        return self.lab is not None and self.onprem is not None

    @property
    def agrees(self) -> bool:
        """Lab, on-prem and the checks' schemas pin one version (when each of them pins one)."""
        versions = {_bare(v) for v in (self.lab, self.onprem, self.schemas) if v is not None}
        return len(versions) <= 1


def _bare(version: str) -> str:
    return version.removeprefix("v")


def _yaml(path: Path) -> Any:
    return yaml.safe_load(path.read_text())


def chart_source(application: str) -> dict | None:
    """The Helm chart source of platform/apps/<application>.yaml (chart, targetRevision), if it has one."""
    spec = _yaml(GITOPS / "platform" / "apps" / f"{application}.yaml")["spec"]
    return next((s for s in spec.get("sources") or [spec.get("source") or {}] if "chart" in s), None)


def chart_pin(component: str, lab_version: str, module_dir: Callable[[str, str], Path]) -> tuple[str, str]:
    """What on-prem runs of a chart-deployed component: (version, where it comes from). The chart must be
    the one the lab's source module ships; the version is the values' image tag, else its appVersion."""
    chart = CHARTS[component]
    source = chart_source(chart.application) or {}
    shipped = _yaml(module_dir(chart.module, lab_version) / chart.path / "Chart.yaml")
    where = f"chart {source['chart']} {source['targetRevision']} (platform/apps/{chart.application}.yaml)"
    if str(source["targetRevision"]) != str(shipped["version"]):
        return (
            f"chart {source['targetRevision']}",
            f"{where}, but {chart.module}@{lab_version} ships chart {shipped['version']}",
        )
    values = _yaml(GITOPS / "platform" / "values" / f"{chart.values}.yaml") or {}
    tag = (values.get("image") or {}).get("tag")
    if tag:
        return str(tag), f"{where}, image.tag of platform/values/{chart.values}.yaml"
    return str(shipped["appVersion"]), f"{where}, its appVersion"


def debian_package(name: str) -> str | None:
    proc = subprocess.run(
        ["dpkg-query", "-W", "-f", "${Version}", name], capture_output=True, text=True, check=False
    )
    if proc.returncode != 0:
        return None
    return proc.stdout.strip() or None


def table(module_dir: Callable[[str, str], Path] | None = None) -> list[Pin]:
    """Every component of the platform with the version each side pins."""
    from provisioning import argocd_bootstrap
    from provisioning.gitops.checks import schema
    from provisioning.lab import recipes

    module_dir = module_dir or schema.module_dir
    lab = recipes.load_versions()
    crds = schema.pins()["crds"]
    ansible = _yaml(ANSIBLE_VERSIONS)
    kubernetes = str(ansible["kubernetes_version"])
    versions_toml = "provisioning/lab/versions.toml"

    def lab_pin(name: str) -> str:
        return str(lab[name]["version"])

    images = {
        c["image"].rsplit(":", 1)[1]
        for doc in argocd_bootstrap.install_manifest()
        for c in (doc.get("spec", {}).get("template", {}).get("spec", {}).get("containers") or [])
        if c["image"].startswith("quay.io/argoproj/argocd:")
    }
    constants = (module_dir("k8s.io/kubernetes", f"v{kubernetes}") / KUBEADM_CONSTANTS).read_text()
    coredns = next(
        line.split('"')[1] for line in constants.splitlines() if line.strip().startswith("CoreDNSVersion =")
    )
    pins = [
        Pin("kubernetes", lab_pin("kubernetes"), versions_toml, kubernetes, "the Ansible roles' pins"),
        Pin(
            "argo-cd",
            lab_pin("argocd"),
            f"{versions_toml} (its image, built here)",
            ", ".join(sorted(images)),
            "the images of Argo CD's install.yaml that the bootstrap applies",
            crds["argo-cd"]["version"],
        ),
        Pin("coredns", lab_pin("coredns"), versions_toml, coredns, f"kubeadm v{kubernetes}'s CoreDNSVersion"),
    ]
    for name in CHARTS:
        onprem, where = chart_pin(name, lab_pin(name), module_dir)
        pins.append(Pin(name, lab_pin(name), versions_toml, onprem, where, crds.get(name, {}).get("version")))
    stack_chart = (chart_source("kube-prometheus-stack") or {}).get("targetRevision")
    stack = f"set by kube-prometheus-stack {stack_chart} (its chart cannot be read offline)"
    pins.append(Pin(KUBE_STATE_METRICS, lab_pin(KUBE_STATE_METRICS), versions_toml, None, stack))
    for name, package in SET_BY_KUBE_PROMETHEUS_STACK.items():
        pins.append(Pin(name, debian_package(package), f"Debian's package {package}", None, stack))
    for app, why in (
        ("ingress-nginx", "not built here: its controller's image cannot be made offline"),
        ("loki", "on-prem only (AGPL, not built here)"),
        ("promtail", "on-prem only (AGPL, not built here)"),
    ):
        revision = (chart_source(app) or {}).get("targetRevision")
        pins.append(Pin(app, None, why, f"chart {revision}", f"platform/apps/{app}.yaml"))
    return pins


def markdown(pins: list[Pin]) -> str:
    lines = [
        "| component | lab | from | on-prem | from | CRD schemas | one version |",
        "|---|---|---|---|---|---|---|",
    ]
    for p in pins:
        verdict = ("yes" if p.agrees else "**NO**") if p.compared else "not compared"
        lines.append(
            f"| {p.component} | {p.lab or '-'} | {p.lab_from} | {p.onprem or '-'} | {p.onprem_from} "
            f"| {p.schemas or '-'} | {verdict} |"
        )
    return "\n".join(lines) + "\n"


def main() -> int:
    pins = table()
    sys.stdout.write(markdown(pins))
    return 0 if all(p.agrees for p in pins) else 1


if __name__ == "__main__":
    raise SystemExit(main())
