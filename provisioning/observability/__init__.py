"""Observability as code: alert rules, Alertmanager routing, Grafana dashboards and chart values.

rules.py extracts the PrometheusRule groups for promtool and plain Prometheus, alertmanager.py renders the
Alertmanager config and runs amtool's route tests, dashboards.py validates the Grafana dashboards.
"""

from pathlib import Path

HERE = Path(__file__).resolve().parent
