"""The bottleneck table: its PromQL is valid (promtool parses it) and a planted Prometheus answer is ranked
by the tightest headroom, with the services at the top of each column named."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from boutique_suite.reporting import bottleneck
from loadtests.results import EndpointStats

PLANTED = {  # query name -> {service: value}
    "cpu": {"frontend": 0.42, "currencyservice": 0.09, "cartservice": 0.01},
    "cpu_of_request": {"frontend": 1.4, "currencyservice": 0.9, "cartservice": 0.05},
    "cpu_of_limit": {"frontend": 0.7, "currencyservice": 0.45, "cartservice": 0.03},
    "throttled": {"frontend": 0.12, "currencyservice": 0.0},
    "memory": {"frontend": 30 * 2**20, "cartservice": 100 * 2**20},
    "memory_of_limit": {"frontend": 0.23, "cartservice": 0.8},
    "restarts": {"cartservice": 2.0},
}


class PlantedPrometheus:
    def __init__(self) -> None:
        self.by_query = {q: name for name, q in bottleneck.queries("boutique-dev", 300).items()}

    def query(self, promql: str) -> list[dict]:
        values = PLANTED[self.by_query[promql]]
        return [{"metric": {"service": s}, "value": [0, str(v)]} for s, v in values.items()] + [
            {"metric": {"service": "emailservice"}, "value": [0, "NaN"]}  # a 0/0 ratio
        ]


def test_services_are_ranked_by_their_tightest_headroom() -> None:
    rows = bottleneck.usage(PlantedPrometheus(), "boutique-dev", 300)
    assert [r.service for r in rows] == ["cartservice", "frontend", "currencyservice"]
    cart = rows[0]
    assert (cart.memory_of_limit, cart.restarts, cart.throttled_ratio) == (0.8, 2, None)
    text = bottleneck.table(rows)
    assert "| frontend | 420 | 140% | 70% | 12% | 30 | 23% | 0 |" in text
    assert "least CPU headroom: **frontend** (70%)" in text
    assert "least memory headroom: **cartservice** (80%)" in text
    assert "emailservice" not in text  # NaN is no sample


def _route(name: str, p95: float, requests: int = 100, failures: int = 0) -> EndpointStats:
    return EndpointStats(name, requests, failures, 1.0, p95 / 2, p95, p95 * 1.5, p95 / 2, p95 * 2)


ROUTES = {
    r.name: r
    for r in (_route("GET /", 180), _route("GET /product/{id}", 640), _route("POST /cart", 900, 5, 5))
}


def test_the_slowest_answered_route_is_named_beside_the_services() -> None:
    rows = bottleneck.usage(PlantedPrometheus(), "boutique-dev", 300)
    text = bottleneck.table(rows, ROUTES)
    assert "slowest route: **GET /product/{id}** (p95 640 ms)" in text  # POST /cart never succeeded
    assert bottleneck.expect_named(rows, ROUTES) == {
        "least CPU headroom": "frontend",
        "least memory headroom": "cartservice",
        "most throttled": "frontend",
        "slowest route": "GET /product/{id}",
    }


def test_a_report_that_cannot_name_a_bottleneck_fails_naming_it() -> None:
    rows = [
        r
        for r in bottleneck.usage(PlantedPrometheus(), "boutique-dev", 300)
        if r.service == "currencyservice"
    ]
    with pytest.raises(AssertionError, match="least memory headroom, slowest route"):
        bottleneck.expect_named(rows, {})


def test_every_service_must_have_every_column() -> None:
    rows = bottleneck.usage(PlantedPrometheus(), "boutique-dev", 300)
    frontend_only = [r for r in rows if r.service == "frontend"]
    bottleneck.expect_measured(frontend_only, ["frontend"])
    with pytest.raises(AssertionError) as gap:
        bottleneck.expect_measured(rows, ["frontend", "currencyservice", "adservice"])
    assert "'currencyservice': ['memory working set', 'memory of limit']" in str(gap.value)
    assert "'adservice': ['CPU'," in str(gap.value)


def test_a_ceiling_names_the_services_above_it() -> None:
    rows = bottleneck.usage(PlantedPrometheus(), "boutique-dev", 300)
    bottleneck.expect_at_most(rows, "CPU throttling", 0.25)
    bottleneck.expect_at_most(rows, "memory of limit", 0.9)
    with pytest.raises(
        AssertionError, match=r"memory of limit above 50% over the run: \{'cartservice': '80%'\}"
    ):
        bottleneck.expect_at_most(rows, "memory of limit", 0.5)


def test_no_samples_say_so() -> None:
    assert "no container samples" in bottleneck.table([])


@pytest.mark.skipif(shutil.which("promtool") is None, reason="promtool is installed by ./run setup")
def test_every_query_is_valid_promql(tmp_path: Path) -> None:
    rules = [{"record": f"bottleneck:{name}", "expr": q} for name, q in bottleneck.queries("ns", 90).items()]
    path = tmp_path / "rules.yaml"
    path.write_text(yaml.safe_dump({"groups": [{"name": "bottleneck", "rules": rules}]}))
    done = subprocess.run(["promtool", "check", "rules", str(path)], capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr
