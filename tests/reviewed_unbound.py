"""Unbound steps, reviewed: each is on-prem only or needs a component the suite does not drive yet.
tests/test_step_coverage.py and tests/test_traceability.py fail when the bindings and this list differ:
a new gap must be added here on purpose, and a step bound since must be removed."""

REVIEWED_UNBOUND: dict[str, tuple[str, ...]] = {
    "Extra latency in the product catalog shows up as the latency bottleneck": (
        'when a commit to gitops-repo sets EXTRA_LATENCY to "600ms" for Deployment "productcatalogservice"',
        'then p95 latency of "GET /product/{id}" rises above 600 ms within 240 seconds',
        'then the report names "GET /product/{id}" as the slowest route',
        'then the alert "BoutiqueHighLatency" fires within 480 seconds',
        'then p95 latency of "GET /product/{id}" falls below 500 ms within 300 seconds',
    ),
}
