"""Run the shopper journey with Locust as a library and return what happened, per endpoint and per second.

Scenarios either run a fixed load and wait for the result::

    result = run_load("http://boutique.local", users=10, spawn_rate=2, duration_s=60)
    assert result.failure_ratio < 0.01, result.describe_failures()

or start it in the background and stop it later, reading the per-second series in between::

    load = start_load("http://boutique.local", users=50, spawn_rate=5)
    ...                                   # wait for the HPA; load.snapshot() is the result so far
    result = load.stop()
    assert result.failures_between(scale_out_started, scale_out_done) == 0

Importing this module imports Locust, which monkey-patches the standard library with gevent: inside pytest,
the root conftest.py imports locust first for that reason. Blocking steps (time.sleep, HTTP, subprocess)
then yield to the shoppers, so the load keeps running while a scenario waits.
"""

from __future__ import annotations

import time
from collections import Counter
from typing import Any

import gevent
from locust import LoadTestShape, User, between
from locust.env import Environment
from locust.runners import STATE_STOPPED, LocalRunner

from loadtests.locustfile import BoutiqueShopper, StepLoadShape
from loadtests.results import EndpointStats, Failure, LoadResult, Sample, percentile

__all__ = [
    "EndpointStats",
    "Failure",
    "LoadResult",
    "LoadRun",
    "Sample",
    "StepLoadShape",
    "run_load",
    "start_load",
]


class _SecondBucket:
    """Requests completed since the last sample."""

    def __init__(self) -> None:
        self.response_times: list[float] = []
        self.timings: list[tuple[str, float]] = []
        self.failures: Counter[str] = Counter()


class SeriesRecorder:
    """Listens to every request and turns them into one Sample per ``interval_s``."""

    def __init__(self, environment: Environment, interval_s: float = 1.0) -> None:
        self.environment = environment
        self.interval_s = interval_s
        self.samples: list[Sample] = []
        self._bucket = _SecondBucket()
        self._start = time.monotonic()
        self._started_at = time.time()
        self._last = 0.0
        self._greenlet: gevent.Greenlet | None = None
        environment.events.request.add_listener(self._on_request)

    def _on_request(
        self, request_type: str, name: str, response_time: float, exception: Any = None, **_: Any
    ):
        self._bucket.response_times.append(response_time)
        self._bucket.timings.append((f"{request_type} {name}", response_time))
        if exception is not None:
            self._bucket.failures[f"{request_type} {name}"] += 1

    def start(self) -> None:
        self._start, self._started_at = time.monotonic(), time.time()
        self._greenlet = gevent.spawn(self._sample_every_interval)

    def _sample_every_interval(self) -> None:
        while True:
            next_at = self._last + self.interval_s
            gevent.sleep(max(0.0, next_at - (time.monotonic() - self._start)))
            self.take_sample()

    def take_sample(self, users: int | None = None) -> None:
        """Close the current window (also the last, partial one when the run stops); ``users`` overrides
        the runner's count (which is 0 once the run has stopped)."""
        bucket, self._bucket = self._bucket, _SecondBucket()
        end = time.monotonic() - self._start
        width = max(end - self._last, 1e-9)
        runner = self.environment.runner
        self.samples.append(
            Sample(
                start_s=round(self._last, 3),
                end_s=round(end, 3),
                at=self._started_at + end,
                users=users if users is not None else runner.user_count if runner else 0,
                requests=len(bucket.response_times),
                failures=sum(bucket.failures.values()),
                rps=len(bucket.response_times) / width,
                p95_ms=percentile(bucket.response_times, 0.95),
                failures_by_endpoint=dict(bucket.failures),
                timings_ms=tuple(bucket.timings),
            )
        )
        self._last = end

    def stop(self, users: int | None = None) -> None:
        """Stop sampling; requests since the last sample go into a last, partial one."""
        if self._greenlet is not None:
            self._greenlet.kill(block=True)
            self._greenlet = None
        if self._bucket.response_times or (time.monotonic() - self._start) - self._last > 0.05:
            self.take_sample(users)


def shopper_class(
    wait_s: tuple[float, float] | None, base: type[User] = BoutiqueShopper, virtual_host: str | None = None
) -> type[User]:
    """The user class to run: ``base`` itself, or a subclass waiting ``wait_s`` (min, max) between tasks
    and sending ``Host: virtual_host`` (an ingress that routes by name, reached at its address)."""
    attributes: dict[str, object] = {}
    if wait_s is not None:
        attributes["wait_time"] = between(*wait_s)
    if virtual_host is not None:
        attributes["default_headers"] = {
            **(getattr(base, "default_headers", None) or {}),
            "Host": virtual_host,
        }
    if not attributes:
        return base
    return type(base.__name__, (base,), {**attributes, "__module__": base.__module__})


class LoadRun:
    """A load run in progress (in this process, on gevent). Stop it with :meth:`stop` or a ``with`` block."""

    def __init__(
        self,
        host: str,
        users: int,
        spawn_rate: float,
        shape: LoadTestShape | None = None,
        wait_s: tuple[float, float] | None = None,
        user_class: type[User] = BoutiqueShopper,
        sample_interval_s: float = 1.0,
        virtual_host: str | None = None,
    ) -> None:
        self.host = host
        self.result: LoadResult | None = None
        self.environment = Environment(
            user_classes=[shopper_class(wait_s, user_class, virtual_host)], host=host, shape_class=shape
        )
        self.runner: LocalRunner = self.environment.create_local_runner()
        self.recorder = SeriesRecorder(self.environment, sample_interval_s)
        self.started_at = time.time()
        self.recorder.start()
        if shape is not None:
            self.runner.start_shape()
        else:
            self.runner.start(users, spawn_rate)

    @property
    def finished(self) -> bool:
        """True once stopped, or once the shape ended the test by itself."""
        return self.result is not None or (
            self.environment.shape_class is not None
            and self.runner.shape_greenlet is None
            and self.runner.state == STATE_STOPPED
        )

    def wait(self, seconds: float) -> None:
        """Let the load run for ``seconds`` (less if a shape ends it first)."""
        deadline = time.monotonic() + seconds
        while not self.finished and (remaining := deadline - time.monotonic()) > 0:
            gevent.sleep(min(0.1, remaining))

    def snapshot(self) -> LoadResult:
        """The result so far (the series up to the last full second); the run goes on."""
        return self.result or self._collect(time.time(), running=True)

    def stop(self) -> LoadResult:
        """Stop every shopper and return the result (again on later calls)."""
        if self.result is None:
            users_running = self.runner.user_count
            self.runner.quit()  # requests that finish while the users stop still land in the last sample
            self.recorder.stop(users=users_running)
            self.result = self._collect(time.time(), running=False)
        return self.result

    def __enter__(self) -> LoadRun:
        return self

    def __exit__(self, *_: object) -> None:
        self.stop()

    def _collect(self, ended_at: float, running: bool) -> LoadResult:
        stats = self.environment.stats
        duration = max(ended_at - self.started_at, 1e-9)
        endpoints = {
            f"{entry.method} {entry.name}": EndpointStats(
                name=f"{entry.method} {entry.name}",
                requests=entry.num_requests,
                failures=entry.num_failures,
                rps=entry.num_requests / duration,
                p50_ms=entry.get_response_time_percentile(0.50),
                p95_ms=entry.get_response_time_percentile(0.95),
                p99_ms=entry.get_response_time_percentile(0.99),
                average_ms=entry.avg_response_time,
                max_ms=entry.max_response_time,
            )
            for entry in stats.entries.values()
        }
        errors = [
            Failure(
                name=f"{error.method} {error.name}",
                error=error.to_name().split(": ", 1)[-1],
                occurrences=error.occurrences,
                first_seen=error.first_seen or 0.0,
                last_seen=error.last_seen or 0.0,
            )
            for error in stats.errors.values()
        ]
        return LoadResult(
            host=self.host,
            started_at=self.started_at,
            ended_at=ended_at,
            requests=stats.total.num_requests,
            failures=stats.total.num_failures,
            endpoints=endpoints,
            errors=errors,
            series=list(self.recorder.samples),
            running=running,
        )


def start_load(
    host: str,
    users: int = 10,
    spawn_rate: float = 2,
    shape: LoadTestShape | None = None,
    wait_s: tuple[float, float] | None = None,
    user_class: type[User] = BoutiqueShopper,
    virtual_host: str | None = None,
) -> LoadRun:
    """Start ``users`` shoppers (``spawn_rate`` per second) against ``host`` in the background, or follow
    ``shape`` (a StepLoadShape, say: then users and spawn_rate are not used). ``wait_s`` overrides the
    shoppers' wait between tasks (min, max seconds; (0, 0) for as fast as possible); ``virtual_host`` is
    the Host header to send when ``host`` is an ingress's address."""
    return LoadRun(
        host, users, spawn_rate, shape=shape, wait_s=wait_s, user_class=user_class, virtual_host=virtual_host
    )


def run_load(
    host: str,
    users: int,
    spawn_rate: float,
    duration_s: float,
    shape: LoadTestShape | None = None,
    wait_s: tuple[float, float] | None = None,
    user_class: type[User] = BoutiqueShopper,
) -> LoadResult:
    """Run the load for ``duration_s`` seconds (or until ``shape`` ends it) and return the result."""
    with start_load(host, users, spawn_rate, shape=shape, wait_s=wait_s, user_class=user_class) as load:
        load.wait(duration_s)
    return load.stop()
