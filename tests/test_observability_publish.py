"""One source for the monitoring: gitops-repo's platform holds exactly what provisioning/observability
gives (rules, Alertmanager routing and template, dashboards, chart values), the lab runs what gitops-repo
renders, and one change to a source rule or route reaches both."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import yaml

from boutique_suite.clients import alerting
from boutique_suite.run import targets
from provisioning.lab import manager
from provisioning.lab.services import monitoring
from provisioning.observability import HERE, dashboards, promql, publish


def test_gitops_repo_monitoring_is_what_the_sources_give() -> None:
    assert publish.stale() == [], "run `python -m provisioning.observability.publish` and commit the result"


def test_every_dashboard_reaches_grafana_as_a_labelled_configmap() -> None:
    sources = {path.name: board for path, board in dashboards.load().items()}
    assert publish.rendered_dashboards() == sources


def test_the_rendered_alertmanager_config_is_the_source_config() -> None:
    from provisioning.observability import alertmanager

    config, template = publish.rendered_alertmanager()
    assert config == alertmanager.load()
    assert template == alertmanager.TEMPLATE.read_text()


@pytest.fixture
def copies(tmp_path: Path) -> tuple[Path, Path]:
    """The sources and gitops-repo's monitoring, copied: a change made here touches nothing else."""
    source, gitops = tmp_path / "observability", tmp_path / "gitops"
    for part in ("rules", "alertmanager", "dashboards"):
        shutil.copytree(HERE / part, source / part)
    shutil.copy(HERE / "runbooks.md", source / "runbooks.md")
    shutil.copytree(publish.GITOPS / publish.MONITORING, gitops / publish.MONITORING)
    (gitops / "platform" / "values").mkdir(parents=True)
    return source, gitops


def test_one_rule_change_reaches_gitops_repo_and_the_labs_prometheus(
    copies: tuple[Path, Path], tmp_path: Path
) -> None:
    source, gitops = copies
    path = source / "rules" / "boutique-alerts.yaml"
    doc = yaml.safe_load(path.read_text())
    rule = doc["spec"]["groups"][0]["rules"][0]
    rule["expr"] = f"({rule['expr']}) and on() vector(1)"
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    publish.publish(gitops, source)
    (rendered,) = publish.rendered_rule_groups(gitops).values()
    assert rendered[0]["rules"][0]["expr"] == rule["expr"]
    (written,) = monitoring._write_rendered_rules(tmp_path / "lab-rules", gitops)
    assert yaml.safe_load(written.read_text())["groups"][0]["rules"][0]["expr"] == rule["expr"]


def test_one_route_change_reaches_gitops_repo_and_the_labs_alertmanager(copies: tuple[Path, Path]) -> None:
    source, gitops = copies
    path = source / "alertmanager" / "alertmanager.yaml"
    path.write_text(path.read_text().replace("repeat_interval: 4h", "repeat_interval: 3h"))
    publish.publish(gitops, source)
    assert publish.rendered_alertmanager(gitops)[0]["route"]["repeat_interval"] == "3h"
    assert monitoring.alertmanager_config("#boutique-alerts", gitops)["route"]["repeat_interval"] == "3h"


def test_a_stale_gitops_repo_is_named(copies: tuple[Path, Path]) -> None:
    source, gitops = copies
    (source / "dashboards" / "cluster-nodes.json").unlink()
    assert publish.stale(gitops, source)[-1].endswith("cluster-nodes.json (no source)")
    publish.publish(gitops, source)
    assert not (gitops / publish.MONITORING / "dashboards" / "cluster-nodes.json").exists()


def essence(expr: str, duration: float, labels: dict, annotations: dict) -> tuple:
    """A rule as both sides can state it. Prometheus prints the expression it parsed, label matchers
    sorted: compare the expression's characters (not their order or spacing), the rest exactly."""
    return sorted("".join(expr.split())), duration, labels, annotations


@pytest.mark.lab
def test_the_labs_prometheus_and_alertmanager_run_what_gitops_repo_renders() -> None:
    manager.up()
    running = monitoring.ensure()
    loaded = {
        name: essence(r["query"], r["duration"], {**r["labels"]}, r["annotations"])
        for name, r in alerting.Prometheus(running.prometheus_url).rules().items()
    }
    rendered = {
        r["alert"]: essence(
            r["expr"],
            monitoring.duration_seconds(monitoring.lab_for(r.get("for", "0s"))),
            r.get("labels", {}),
            r["annotations"],
        )
        for groups in publish.rendered_rule_groups().values()
        for g in groups
        for r in g["rules"]
    }
    assert loaded == rendered
    config = alerting.Alertmanager(running.alertmanager_url).config()
    expected = publish.rendered_alertmanager()[0]
    assert [r["receiver"] for r in config["route"]["routes"]] == [
        r["receiver"] for r in expected["route"]["routes"]
    ]
    assert config["inhibit_rules"] == expected["inhibit_rules"]


class FakePrometheus:
    def __init__(self, names: set[str]) -> None:
        self.names = names

    def metric_names(self) -> set[str]:
        return self.names


def test_the_metrics_named_are_read_from_the_parsed_promql() -> None:
    expr = 'sum by (node) (rate(a_total{job="x"}[5m])) / on (node) group_left b or {__name__="c"} > bool 1'
    assert promql.metric_names(expr) == {"a_total", "b", "c"}
    named = promql.named_metrics()
    assert "kube_pod_container_status_restarts_total" in named  # BoutiquePodCrashLooping
    assert "node_cpu_seconds_total" in named  # the Cluster nodes dashboard


def test_a_named_metric_without_series_is_named_with_where_it_is_used() -> None:
    lab = targets.load("lab")
    named = {"up": ["r"], "gone_total": ["boutique-alerts alert Gone"], "node_load1": ["dashboard"]}
    with pytest.raises(AssertionError, match=r"gone_total \(used by boutique-alerts alert Gone\)"):
        alerting.expect_named_metrics_have_series(FakePrometheus({"up"}), lab, named)  # type: ignore[arg-type]
    excused = alerting.expect_named_metrics_have_series(
        FakePrometheus({"up", "gone_total"}),  # type: ignore[arg-type]
        lab,
        named,
    )
    assert list(excused.values()) == [["node_load1"]]  # the lab runs no node-exporter on hosts
