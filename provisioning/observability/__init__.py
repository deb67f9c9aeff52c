"""Observability as code: alert rules, Alertmanager routing, Grafana dashboards (the charts' values are
gitops-repo's, ``VALUES``).

rules.py extracts the PrometheusRule groups for promtool and plain Prometheus, alertmanager.py renders the
Alertmanager config and runs amtool's route tests, dashboards.py validates the Grafana dashboards.
"""

from pathlib import Path

HERE = Path(__file__).resolve().parent
# The monitoring charts' values: one set, gitops-repo's, which Argo CD gives the charts.
VALUES = HERE.parent / "gitops" / "platform" / "values"
