"""What a Locust run returns: per endpoint, per failure and per second, with the questions a scenario asks of
it (failure ratio, percentiles over a window, per-route latencies). ``runner`` makes them; the report's charts
and the bottleneck table only read them."""

from __future__ import annotations

import csv
import io
import math
from collections import Counter
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from typing import Any

from loadtests.locustfile import TASK_REQUESTS


@dataclass(frozen=True)
class EndpointStats:
    """One request name ("GET /cart") over the whole run; latencies in milliseconds."""

    name: str
    requests: int
    failures: int
    rps: float
    p50_ms: float
    p95_ms: float
    p99_ms: float
    average_ms: float
    max_ms: float


@dataclass(frozen=True)
class Failure:
    """One kind of failed request: which endpoint, what went wrong, how often and when (epoch seconds)."""

    name: str
    error: str
    occurrences: int
    first_seen: float
    last_seen: float

    def __str__(self) -> str:
        return f"{self.name}: {self.error} (x{self.occurrences})"


@dataclass(frozen=True)
class Sample:
    """One second of the run: the window (start_s, end_s] since the run started, ``at`` its end in epoch
    seconds (to line up with Kubernetes and Prometheus timestamps), users running at its end, requests and
    failures completed in it, and the p95 latency of those requests (None when there were none)."""

    start_s: float
    end_s: float
    at: float
    users: int
    requests: int
    failures: int
    rps: float
    p95_ms: float | None
    failures_by_endpoint: dict[str, int] = field(default_factory=dict)
    timings_ms: tuple[tuple[str, float], ...] = field(default=(), repr=False)  # ("GET /cart", ms) each

    @property
    def started_at(self) -> float:
        return self.at - (self.end_s - self.start_s)


@dataclass(frozen=True)
class LoadResult:
    """What a load run did. Times: ``started_at`` / ``ended_at`` in epoch seconds; the series has one
    Sample per second. ``running`` is True for a snapshot of a run that has not stopped yet."""

    host: str
    started_at: float
    ended_at: float
    requests: int
    failures: int
    endpoints: dict[str, EndpointStats]
    errors: list[Failure]
    series: list[Sample]
    running: bool = False

    @property
    def duration_s(self) -> float:
        return self.ended_at - self.started_at

    @property
    def rps(self) -> float:
        """Requests per second over the whole run (ramp-up included)."""
        return self.requests / self.duration_s if self.duration_s > 0 else 0.0

    @property
    def failure_ratio(self) -> float:
        return self.failures / self.requests if self.requests else 0.0

    @property
    def peak_users(self) -> int:
        return max((sample.users for sample in self.series), default=0)

    def samples_between(self, start: float, end: float) -> list[Sample]:
        """The samples whose one-second window overlaps [start, end] (epoch seconds): a window that only
        touches the interval counts, so a failure near either edge is never missed."""
        return [s for s in self.series if s.at >= start and s.started_at <= end]

    def requests_between(self, start: float, end: float) -> int:
        return sum(sample.requests for sample in self.samples_between(start, end))

    def failures_between(self, start: float, end: float) -> int:
        return sum(sample.failures for sample in self.samples_between(start, end))

    def failed_endpoints_between(self, start: float, end: float) -> dict[str, int]:
        counts: Counter[str] = Counter()
        for sample in self.samples_between(start, end):
            counts.update(sample.failures_by_endpoint)
        return dict(counts)

    def percentile_between(
        self, start: float, end: float, fraction: float, route: str | None = None
    ) -> float | None:
        """The latency percentile (0.95: p95) of every request (of ``route``, "GET /cart", if given)
        completed in the samples between ``start`` and ``end`` (epoch seconds); None when there were none."""
        times = [
            ms
            for sample in self.samples_between(start, end)
            for name, ms in sample.timings_ms
            if route is None or name == route
        ]
        return percentile(times, fraction)

    def route_percentiles_between(self, start: float, end: float, fraction: float) -> dict[str, float]:
        """Per route, the latency percentile of its requests completed between ``start`` and ``end``."""
        routes = {name for sample in self.samples_between(start, end) for name, _ in sample.timings_ms}
        found = {route: self.percentile_between(start, end, fraction, route) for route in routes}
        return {route: value for route, value in found.items() if value is not None}

    def tasks_not_run(self, tasks: Iterable[str]) -> list[str]:
        """Which of the shopper ``tasks`` ("home", "checkout", …: TASK_REQUESTS) never sent their own
        request (the last one each task makes)."""
        unknown = [t for t in tasks if t not in TASK_REQUESTS]
        if unknown:
            raise KeyError(f"unknown shopper tasks {unknown}; known: {list(TASK_REQUESTS)}")
        return [t for t in tasks if self.endpoints.get(TASK_REQUESTS[t][-1]) is None]

    def describe_failures(self, limit: int = 10) -> str:
        """One line per kind of failure, the most frequent first (for assertion messages)."""
        if not self.failures:
            return f"no failed request out of {self.requests}"
        worst = sorted(self.errors, key=lambda f: -f.occurrences)[:limit]
        lines = [f"{self.failures} of {self.requests} requests failed:", *(f"  {f}" for f in worst)]
        return "\n".join(lines)

    def as_dict(self) -> dict[str, Any]:
        """Plain data (JSON-serialisable) for the report."""
        data = asdict(self)
        data.update(duration_s=self.duration_s, rps=self.rps, failure_ratio=self.failure_ratio)
        return data

    def series_csv(self) -> str:
        """The per-second series as CSV (time, users, RPS, p95, failures) for charts."""
        out = io.StringIO()
        writer = csv.writer(out)
        writer.writerow(["at", "elapsed_s", "users", "requests", "rps", "p95_ms", "failures"])
        for s in self.series:
            p95 = "" if s.p95_ms is None else f"{s.p95_ms:.1f}"
            writer.writerow(
                [f"{s.at:.3f}", f"{s.end_s:.1f}", s.users, s.requests, f"{s.rps:.2f}", p95, s.failures]
            )
        return out.getvalue()


def percentile(values: list[float], fraction: float) -> float | None:
    """Nearest-rank percentile (fraction 0.95 for p95); None for no values."""
    if not values:
        return None
    ordered = sorted(values)
    return ordered[max(0, math.ceil(fraction * len(ordered)) - 1)]
