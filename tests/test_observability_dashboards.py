"""Grafana dashboards, datasources, and the Loki + Promtail values: the dashboards are valid (JSON model,
unique panel ids, PromQL parses, datasources resolve), cover what issue 6 asks, ship as sidecar-labelled
ConfigMaps, and the validator catches planted mistakes."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import yaml

from provisioning.observability import VALUES, dashboards

DASHBOARDS = dashboards.load()
TITLES = {d["title"] for d in DASHBOARDS.values()}


def exprs(title: str) -> str:
    [dashboard] = [d for d in DASHBOARDS.values() if d["title"] == title]
    return "\n".join(q.expr for q in dashboards.queries(title, dashboard))


def test_every_dashboard_is_valid() -> None:
    assert dashboards.validate() == []


def test_the_dashboards_the_features_and_issue_name_exist() -> None:
    assert {"Online Boutique overview", "Online Boutique resources", "Cluster nodes", "Argo CD"} <= TITLES


@pytest.mark.parametrize(
    "needle",
    [
        "rate(nginx_ingress_controller_requests",
        'status=~"5.."',
        "histogram_quantile(0.5,",
        "histogram_quantile(0.95,",
        "container_cpu_usage_seconds_total",
        'kube_pod_container_resource_requests{namespace=~"$namespace", resource="cpu"}',
        "container_memory_working_set_bytes",
        'kube_pod_container_resource_requests{namespace=~"$namespace", resource="memory"}',
        "kube_pod_container_status_restarts_total",
        "kube_horizontalpodautoscaler_status_current_replicas",
    ],
)
def test_the_overview_shows(needle: str) -> None:
    assert needle in exprs("Online Boutique overview")


def test_the_datasources_are_provisioned_by_the_stack() -> None:
    assert dashboards.provisioned_datasources() == {"prometheus": "prometheus", "loki": "loki"}
    grafana = yaml.safe_load((VALUES / "kube-prometheus-stack.yaml").read_text())["grafana"]
    assert grafana["sidecar"]["datasources"]["name"] == "Prometheus"
    assert [ds["name"] for ds in grafana["additionalDataSources"]] == ["Loki"]


def test_the_dashboards_ship_as_configmaps_with_the_sidecar_label() -> None:
    kustomization = yaml.safe_load((dashboards.DASHBOARDS_DIR / "kustomization.yaml").read_text())
    grafana = yaml.safe_load((VALUES / "kube-prometheus-stack.yaml").read_text())["grafana"]["sidecar"]
    label, value = grafana["dashboards"]["label"], grafana["dashboards"]["labelValue"]
    assert kustomization["generatorOptions"]["labels"][label] == value == "1"
    listed = sorted(f for g in kustomization["configMapGenerator"] for f in g["files"])
    assert listed == sorted(p.name for p in DASHBOARDS)


def test_grafana_variables_become_parseable_promql() -> None:
    expr = 'sum(rate(x{namespace=~"$namespace", pod=~"${pod}", n=~"[[node]]"}[$__rate_interval]))'
    assert dashboards.substitute_variables(expr) == (
        'sum(rate(x{namespace=~"placeholder", pod=~"placeholder", n=~"placeholder"}[5m]))'
    )
    assert (
        dashboards.variable_promql("label_values(kube_pod_info{a='b'}, namespace)") == "kube_pod_info{a='b'}"
    )


@pytest.fixture
def planted(tmp_path: Path) -> Path:
    copy = tmp_path / "dashboards"
    shutil.copytree(dashboards.DASHBOARDS_DIR, copy)
    return copy


def edit(directory: Path, name: str, change) -> None:  # type: ignore[no-untyped-def]
    path = directory / name
    model = json.loads(path.read_text())
    change(model)
    path.write_text(json.dumps(model))


def test_the_validator_catches_broken_promql(planted: Path) -> None:
    edit(
        planted,
        "argocd.json",
        lambda m: m["panels"][1]["targets"][0].update(expr="count by (x (argocd_app_info)"),
    )
    [problem] = dashboards.validate(planted)
    assert ": argocd.json panel 2 target A" in problem and "parse error" in problem


def test_the_validator_catches_a_dangling_datasource(planted: Path) -> None:
    def dangle(model: dict) -> None:
        panel = model["panels"][0]
        panel["datasource"] = {"type": "prometheus", "uid": "prometheus-old"}
        panel["targets"][0].pop("datasource")

    edit(planted, "cluster-nodes.json", dangle)
    [problem] = dashboards.validate(planted)
    assert "cluster-nodes.json panel 1 target A" in problem and "prometheus-old" in problem


def test_the_validator_catches_a_ratio_without_thresholds_and_a_panel_without_unit(planted: Path) -> None:
    def strip(model: dict) -> None:
        model["panels"][0]["fieldConfig"]["defaults"].pop("thresholds")  # CPU requested / allocatable
        model["panels"][1]["fieldConfig"]["defaults"].pop("unit")  # Memory requested / allocatable

    edit(planted, "cluster-nodes.json", strip)
    assert dashboards.validate(planted) == [
        "cluster-nodes.json panel 1 (CPU requested / allocatable): a percentunit panel needs a threshold"
        " above the base",
        "cluster-nodes.json panel 2 (Memory requested / allocatable): no unit",
    ]


def test_the_validator_catches_duplicate_panel_ids_and_invalid_json(planted: Path) -> None:
    edit(planted, "boutique-resources.json", lambda m: m["panels"][1].update(id=1))
    assert dashboards.validate(planted) == ["boutique-resources.json: panel id 1 used 2 times"]
    (planted / "argocd.json").write_text("{not json")
    with pytest.raises(json.JSONDecodeError):
        dashboards.validate(planted)


def test_promtail_ships_the_boutique_namespaces_to_loki() -> None:
    import re

    promtail = yaml.safe_load((VALUES / "promtail.yaml").read_text())
    [keep] = promtail["config"]["snippets"]["extraRelabelConfigs"]
    assert keep["action"] == "keep" and keep["sourceLabels"] == ["__meta_kubernetes_namespace"]
    for namespace in ("boutique-dev", "boutique-prod", "argocd"):
        assert re.fullmatch(keep["regex"], namespace)
    assert not re.fullmatch(keep["regex"], "kube-system")
    [client] = promtail["config"]["clients"]
    grafana = yaml.safe_load((VALUES / "kube-prometheus-stack.yaml").read_text())["grafana"]
    [loki_ds] = grafana["additionalDataSources"]
    assert client["url"] == loki_ds["url"] + "/loki/api/v1/push"


def test_loki_runs_as_one_single_binary() -> None:
    loki = yaml.safe_load((VALUES / "loki.yaml").read_text())
    assert loki["deploymentMode"] == "SingleBinary"
    assert loki["singleBinary"]["replicas"] == 1 and loki["loki"]["commonConfig"]["replication_factor"] == 1
    assert loki["gateway"]["enabled"] is True


def test_node_exporter_series_carry_the_node_label() -> None:
    values = yaml.safe_load((VALUES / "kube-prometheus-stack.yaml").read_text())
    relabel = values["prometheus-node-exporter"]["prometheus"]["monitor"]["relabelings"]
    assert {"sourceLabels": ["__meta_kubernetes_pod_node_name"], "targetLabel": "node"} in relabel
