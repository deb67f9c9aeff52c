"""Latency while the shoppers shop: the p95 of every request within the SLO over a window, and one route's
recent p95 crossing a threshold or standing out as the slowest. Read from the running Locust session of
``load``, while it runs."""

from __future__ import annotations

import time

from boutique_suite.actions.load import LoadSession
from boutique_suite.run import waits


def expect_p95_within_slo_for(session: LoadSession, slo_ms: float, seconds: float) -> float:
    """From now, the shoppers keep shopping for ``seconds``; the p95 of every request answered in that
    window is under ``slo_ms``. Returns the p95 measured."""
    start = time.time()
    session.run_for(seconds)
    result = session.snapshot()
    p95 = result.percentile_between(start, start + seconds, 0.95)
    assert p95 is not None, f"no request was answered in the {seconds:.0f} s window"
    assert p95 < slo_ms, (
        f"p95 over the {seconds:.0f} s window was {p95:.0f} ms over "
        f"{result.requests_between(start, start + seconds)} requests (SLO {slo_ms:.0f} ms)"
    )
    return p95


ROUTE_WINDOW_S = 20  # the recent seconds a route's latency is judged on while it changes


def route_p95(
    session: LoadSession, route: str, above: bool, ms: float, window_s: float = ROUTE_WINDOW_S
) -> waits.Probe:
    """Succeeds once the p95 of ``route`` over the last ``window_s`` seconds is above (or below) ``ms``."""

    def probe() -> waits.Check:
        now = time.time()
        p95 = session.snapshot().percentile_between(now - window_s, now, 0.95, route)
        detail = f"p95 of {route} over the last {window_s:.0f} s: " + (
            "no request" if p95 is None else f"{p95:.0f} ms"
        )
        done = p95 is not None and (p95 > ms if above else p95 < ms)
        return waits.succeeded(detail, p95) if done else waits.pending(detail)

    return probe


def expect_route_p95(session: LoadSession, route: str, above: bool, ms: float, timeout: float) -> float:
    """Wait until the recent p95 of ``route`` crosses ``ms`` (upwards or downwards); seconds it took."""
    started = time.monotonic()
    way = "above" if above else "below"
    waits.until(
        route_p95(session, route, above, ms),
        timeout=timeout,
        interval=2,
        what=f"p95 of {route} {way} {ms:.0f} ms",
    )
    return time.monotonic() - started


def expect_slowest_route(
    session: LoadSession, route: str, window_s: float = ROUTE_WINDOW_S
) -> dict[str, float]:
    """Over the last ``window_s`` seconds, ``route`` has the highest p95 of all routes; the p95s."""
    now = time.time()
    p95s = session.snapshot().route_percentiles_between(now - window_s, now, 0.95)
    assert p95s, f"no request completed in the last {window_s:.0f} s"
    slowest = max(p95s, key=lambda name: p95s[name])
    shown = {name: round(ms) for name, ms in sorted(p95s.items(), key=lambda item: -item[1])}
    assert slowest == route, f"the slowest route is {slowest}, not {route} (p95 ms: {shown})"
    return p95s


P95_WAYS = ("rises above", "falls below")


def expect_route_p95_crossing(session: LoadSession, route: str, way: str, ms: float, timeout: float) -> float:
    """expect_route_p95 in the scenario's words: ``way`` is "rises above" or "falls below"."""
    assert way in P95_WAYS, f"p95 latency either rises above or falls below, not {way!r}"
    return expect_route_p95(session, route, way == "rises above", ms, timeout)
