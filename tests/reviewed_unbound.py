"""Unbound steps, reviewed: each is on-prem only or needs a component the suite does not drive yet.
tests/test_step_coverage.py and tests/test_traceability.py fail when the bindings and this list differ:
a new gap must be added here on purpose, and a step bound since must be removed."""

REVIEWED_UNBOUND: dict[str, tuple[str, ...]] = {}
