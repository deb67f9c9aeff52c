"""Every object the suite creates carries these labels, so leftovers of any run can be found."""

from __future__ import annotations

import os
import secrets
import time
from collections.abc import Iterable

MANAGED_BY = "app.kubernetes.io/managed-by"
SUITE = "boutique-suite"
RUN_ID = "boutique.suite/run-id"
FAULT_BY = "boutique.suite/fault-by-run"  # annotation: the run whose fault changed this object (a cordon)


def new_run_id() -> str:
    return os.environ.get("BOUTIQUE_RUN_ID") or f"{time.strftime('%m%d%H%M%S')}-{secrets.token_hex(2)}"


def labels(run_id: str) -> dict[str, str]:
    return {MANAGED_BY: SUITE, RUN_ID: run_id}


def selector(run_id: str | None = None) -> str:
    """Label selector for everything the suite made (any run), or for one run."""
    base = f"{MANAGED_BY}={SUITE}"
    return f"{base},{RUN_ID}={run_id}" if run_id else base


def leftovers_selector(run_id: str, alive: Iterable[str] = ()) -> str:
    """Objects of other runs (made by the suite, not by this run) whose run is not ``alive``."""
    spared = ",".join(sorted({run_id, *alive}))
    return f"{MANAGED_BY}={SUITE},{RUN_ID} notin ({spared})"
