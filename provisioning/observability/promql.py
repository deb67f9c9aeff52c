"""The metrics the platform's monitoring names: every metric of every alert rule and every Prometheus query
of every dashboard, as gitops-repo renders them, read from the parsed PromQL (promql-parser), not by pattern.

A dashboard or alert over a metric nobody exports parses fine and shows nothing: tests/test_lab_monitoring.py
asks the lab's Prometheus for each of these names.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator
from typing import Any

import promql_parser

from provisioning.observability import dashboards, publish


def metric_names(expr: str) -> set[str]:
    """The metric names an expression selects (``__name__`` matchers included)."""
    return set(_selectors(promql_parser.parse(expr)))


def _selectors(node: Any) -> Iterator[str]:
    if isinstance(node, promql_parser.VectorSelector):
        if node.name:
            yield node.name
        for matcher in node.matchers.matchers:
            if matcher.name == "__name__" and matcher.op == promql_parser.MatchOp.Equal:
                yield matcher.value
        return
    if isinstance(node, promql_parser.MatrixSelector):
        yield from _selectors(node.vector_selector)
        return
    children: list[Any] = []
    if isinstance(node, promql_parser.BinaryExpr):
        children = [node.lhs, node.rhs]
    elif isinstance(node, promql_parser.AggregateExpr):
        children = [node.expr, node.param]
    elif isinstance(node, promql_parser.Call):
        children = list(node.args)
    elif isinstance(node, promql_parser.ParenExpr | promql_parser.UnaryExpr | promql_parser.SubqueryExpr):
        children = [node.expr]
    for child in children:
        if child is not None:
            yield from _selectors(child)


def named_metrics() -> dict[str, list[str]]:
    """{metric: where it is used} over the rendered alert rules and dashboards."""
    used: dict[str, list[str]] = defaultdict(list)
    for rule_set, groups in publish.rendered_rule_groups().items():
        for group in groups:
            for rule in group["rules"]:
                for name in metric_names(rule["expr"]):
                    used[name].append(f"{rule_set} alert {rule.get('alert') or rule.get('record')}")
    for board_name, board in publish.rendered_dashboards().items():
        for query in dashboards.queries(board_name, board):
            ds = query.datasource
            if isinstance(ds, dict) and ds.get("type") == "prometheus" and query.expr.strip():
                for name in metric_names(dashboards.substitute_variables(query.expr)):
                    used[name].append(query.where)
    return dict(used)
