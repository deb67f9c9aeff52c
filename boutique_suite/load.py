"""Locust load against the storefront. loadtests/ holds the shopper journey and a runner that uses Locust as
a library; the scenarios' Locust steps are not wired to it yet, so they skip with that reason."""

from __future__ import annotations

from boutique_suite import evidence
from boutique_suite.targets import Target

NOT_WIRED = (
    "the Locust steps are not wired to loadtests/runner.py yet (loadtests/ runs by hand: "
    "locust -f loadtests/locustfile.py)"
)


def unavailable(target: Target) -> str:
    """Why Locust cannot run against the target's storefront (every target, for now)."""
    return NOT_WIRED if target.is_lab else evidence.ONPREM_PENDING
