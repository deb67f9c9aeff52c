"""Grafana's and Loki's checks against fake answers: no Grafana, no Loki, no Prometheus."""

from __future__ import annotations

from types import SimpleNamespace as NS

import pytest

from boutique_suite.clients import grafana, logs
from boutique_suite.run import waits

DASHBOARD = {
    "title": "Online Boutique overview",
    "templating": {
        "list": [
            {"name": "namespace", "current": {"value": "boutique-dev"}},
            {"name": "pod", "current": {"value": "$__all"}},
        ]
    },
    "panels": [
        {
            "title": "Requests",
            "targets": [{"expr": 'sum(rate(x{namespace="$namespace"}[$__rate_interval]))'}],
        },
        {"title": "Pods", "targets": [{"expr": 'count(kube_pod_info{pod=~"${pod}"})'}]},
        {"title": "Notes", "type": "text"},
    ],
}


def test_a_query_is_sent_with_the_dashboards_current_variables_and_intervals() -> None:
    values = grafana.current_values(DASHBOARD)
    assert values == {"namespace": "boutique-dev", "pod": ".*"}
    assert grafana.substituted(DASHBOARD["panels"][0]["targets"][0]["expr"], values) == (
        'sum(rate(x{namespace="boutique-dev"}[5m]))'
    )


def test_a_panel_whose_queries_return_nothing_is_named() -> None:
    answers = {
        'sum(rate(x{namespace="boutique-dev"}[5m]))': [{"values": [[1, "2"]]}],
        'count(kube_pod_info{pod=~".*"})': [],
    }
    prom = NS(api=NS(custom_query_range=lambda query, **_: answers[query]))
    assert grafana.empty_panels(prom, DASHBOARD, 300) == ["Online Boutique overview: Pods"]  # type: ignore[arg-type]


class _Grafana:
    def __init__(self, answers: dict) -> None:
        self.answers = answers

    def get(self, path: str, **params: str) -> object:
        return self.answers[path]


def test_dashboards_made_by_hand_are_not_provisioned() -> None:
    fake = _Grafana(
        {"/api/dashboards/uid/a": {"meta": {"provisioned": True}}, "/api/dashboards/uid/b": {"meta": {}}}
    )
    with pytest.raises(AssertionError, match=r"\['Cluster nodes'\]"):
        grafana.expect_provisioned(fake, {"Online Boutique overview": "a", "Cluster nodes": "b"})  # type: ignore[arg-type]


def test_an_unhealthy_data_source_is_named_with_grafanas_message() -> None:
    fake = _Grafana(
        {
            "/api/datasources/name/Prometheus": {"uid": "p"},
            "/api/datasources/uid/p/health": {"status": "OK"},
            "/api/datasources/name/Loki": {"uid": "l"},
            "/api/datasources/uid/l/health": {"status": "ERROR", "message": "connection refused"},
        }
    )
    with pytest.raises(AssertionError, match="Loki: connection refused"):
        grafana.expect_datasources_healthy(fake, "Prometheus", "Loki")  # type: ignore[arg-type]


class _Answer:
    status_code = 200

    def __init__(self, lines: list[str]) -> None:
        self.lines = lines

    def json(self) -> dict:
        return {"data": {"result": [{"values": [["1", line] for line in self.lines]}]}}


@pytest.mark.parametrize(
    ("lines", "outcome"), [(["other"], waits.Outcome.PENDING), (["x probe run-1 y"], waits.Outcome.SUCCEEDED)]
)
def test_loki_succeeds_once_it_returns_the_line(
    monkeypatch: pytest.MonkeyPatch, lines: list[str], outcome: waits.Outcome
) -> None:
    sent = {}

    def get(url: str, params: dict, **_: object) -> _Answer:
        sent.update(params)
        return _Answer(lines)

    monkeypatch.setattr(logs.requests, "get", get)
    assert logs.loki_has("https://loki.local", "boutique-dev", "probe run-1", 0)().outcome is outcome
    assert sent["query"] == '{namespace="boutique-dev"} |= "probe run-1"'
