"""Locust load against the storefront. The lab has no data plane (KWOK pods run no container, so nothing
answers HTTP behind the storefront's Service and Ingress): every Locust step skips there with that reason.
On-prem, the headless Locust runner is not written yet."""

from __future__ import annotations

from boutique_suite import evidence
from boutique_suite.targets import Target

NO_DATA_PLANE = (
    "the lab has no data plane: KWOK's pods run no container, so the storefront serves no HTTP for Locust "
    "to load (run with --target onprem)"
)


def unavailable(target: Target) -> str:
    """Why Locust cannot run against the target's storefront (every target, for now)."""
    return NO_DATA_PLANE if target.is_lab else evidence.ONPREM_PENDING
