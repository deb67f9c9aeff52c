"""The Loki and Grafana clients against local HTTP servers that answer as Loki's and Grafana's APIs do (paths,
query parameters, bearer token, JSON shapes): the same requests the on-prem scenarios send, over the wire."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any
from urllib.parse import parse_qs, urlparse

import pytest

from boutique_suite.clients import grafana, logs
from boutique_suite.run import waits
from tests import localhttp

TOKEN = "glsa_test-token-never-printed"
LOGQL = re.compile(r'^\{namespace="(?P<ns>[^"]+)"\} \|= "(?P<line>[^"]+)"$')


class Api:
    """What the fake servers hold: Loki's ingested lines, Grafana's data sources and dashboards."""

    def __init__(self) -> None:
        self.lines: list[tuple[str, str]] = []  # (namespace, line)
        self.health = {"Prometheus": ("OK", "Successfully queried the Prometheus API.")}
        self.health["Loki"] = ("OK", "Data source successfully connected.")
        self.dashboards = {"ob-overview": ("Online Boutique overview", True)}
        self.seen: list[str] = []

    def loki(self, query: dict[str, list[str]]) -> tuple[int, Any]:
        parsed = LOGQL.match(query.get("query", [""])[0])
        if parsed is None or not query.get("start", [""])[0].isdigit():
            return 400, "parse error: the query is not a stream selector with a line filter"
        values = [["1796350000000000000", line] for ns, line in self.lines if ns == parsed["ns"]]
        values = [v for v in values if parsed["line"] in v[1]]
        streams = [{"stream": {"namespace": parsed["ns"]}, "values": values}] if values else []
        return 200, {"status": "success", "data": {"resultType": "streams", "result": streams}}

    def grafana(self, path: str, query: dict[str, list[str]], auth: str) -> tuple[int, Any]:
        if auth != f"Bearer {TOKEN}":
            return 401, {"message": "invalid API key"}
        if m := re.fullmatch(r"/api/datasources/name/(\w+)", path):
            return (200, {"uid": f"uid-{m[1]}", "name": m[1]}) if m[1] in self.health else (404, {})
        if m := re.fullmatch(r"/api/datasources/uid/uid-(\w+)/health", path):
            status, message = self.health[m[1]]
            return 200, {"status": status, "message": message}
        if path == "/api/search" and query.get("type") == ["dash-db"]:
            wanted = query.get("query", [""])[0].lower()
            hits = [
                {"uid": uid, "title": title, "type": "dash-db"}
                for uid, (title, _) in self.dashboards.items()
                if wanted in title.lower()
            ]
            return 200, hits
        if m := re.fullmatch(r"/api/dashboards/uid/([\w-]+)", path):
            title, provisioned = self.dashboards[m[1]]
            return 200, {"dashboard": {"uid": m[1], "title": title}, "meta": {"provisioned": provisioned}}
        return 404, {"message": "Not found"}


@pytest.fixture
def api() -> Iterator[tuple[Api, str]]:
    state = Api()

    def answer(method: str, path: str, headers: dict[str, str]) -> tuple[int, Any]:
        url = urlparse(path)
        query = parse_qs(url.query)
        state.seen.append(url.path)
        if url.path == "/loki/api/v1/query_range":
            return state.loki(query)
        return state.grafana(url.path, query, headers.get("Authorization", ""))

    with localhttp.serve(answer) as url:
        yield state, url


def test_loki_is_pending_until_it_has_the_line_in_that_namespace(api: tuple[Api, str]) -> None:
    state, url = api
    probe = logs.loki_has(url, "boutique-dev", "suite-line-1", since=1796349999.0)
    state.lines.append(("boutique-prod", "suite-line-1"))
    assert probe().outcome is waits.Outcome.PENDING
    state.lines.append(("boutique-dev", "suite-line-1 from the probe pod"))
    check = probe()
    assert check.outcome is waits.Outcome.SUCCEEDED, check.detail
    assert state.seen == ["/loki/api/v1/query_range"] * 2


def test_a_query_loki_rejects_fails_with_lokis_words(api: tuple[Api, str]) -> None:
    _, url = api
    check = logs.loki_has(url, "boutique-dev", 'a "quoted" line', since=0)()
    assert check.outcome is waits.Outcome.FAILED
    assert "400" in check.detail and "parse error" in check.detail


def test_an_unreachable_loki_is_pending_not_a_traceback() -> None:
    check = logs.loki_has("http://127.0.0.1:9", "boutique-dev", "x", since=0)()
    assert check.outcome is waits.Outcome.PENDING and "Loki: ConnectionError" in check.detail


def test_data_sources_pass_grafanas_health_checks(api: tuple[Api, str]) -> None:
    _, url = api
    grafana.expect_datasources_healthy(grafana.Grafana(url, TOKEN), "Prometheus", "Loki")


def test_an_unhealthy_data_source_is_named_with_grafanas_message(api: tuple[Api, str]) -> None:
    state, url = api
    state.health["Loki"] = ("ERROR", "Unable to connect with Loki. Please check the server logs.")
    with pytest.raises(AssertionError, match="Loki: Unable to connect with Loki"):
        grafana.expect_datasources_healthy(grafana.Grafana(url, TOKEN), "Prometheus", "Loki")


def test_a_wrong_token_is_named_by_status_and_never_printed(api: tuple[Api, str]) -> None:
    _, url = api
    client = grafana.Grafana(url, "glsa_wrong-secret")
    with pytest.raises(AssertionError, match="HTTP 401") as failure:
        grafana.expect_datasources_healthy(client, "Prometheus")
    assert "glsa_wrong-secret" not in str(failure.value) and "glsa_wrong-secret" not in repr(client)


def test_dashboards_are_found_by_title_and_a_hand_made_one_is_named(api: tuple[Api, str]) -> None:
    state, url = api
    client = grafana.Grafana(url, TOKEN)
    state.dashboards["by-hand"] = ("Cluster nodes", False)
    uids = grafana.find_dashboards(client, "Online Boutique overview", "Cluster nodes")
    assert uids == {"Online Boutique overview": "ob-overview", "Cluster nodes": "by-hand"}
    with pytest.raises(AssertionError, match=r"\['Cluster nodes'\]"):
        grafana.expect_provisioned(client, uids)
    with pytest.raises(AssertionError, match="no dashboard titled 'Online Boutique resources'"):
        grafana.find_dashboards(client, "Online Boutique resources")
