"""PNG charts of a load run for the report: users and requests per second, p95 latency, and the replicas of
each watched Deployment, on one time axis (seconds since the load started)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only, no display

import matplotlib.pyplot as plt  # after the backend is chosen

from loadtests.results import LoadResult

ReplicaSeries = Iterable[tuple[float, int]]  # (epoch seconds, pods)


def load_chart(result: LoadResult, replicas: Mapping[str, ReplicaSeries], out: Path) -> Path:
    """Draw the run into ``out`` (PNG) and return it."""
    start = result.started_at
    elapsed = [s.at - start for s in result.series]
    panels = 3 if replicas else 2
    fig, axes = plt.subplots(panels, 1, sharex=True, figsize=(9, 2.6 * panels), constrained_layout=True)
    load_ax, latency_ax = axes[0], axes[1]
    load_ax.plot(elapsed, [s.rps for s in result.series], label="requests/s", color="tab:blue")
    load_ax.plot(elapsed, [s.users for s in result.series], label="users", color="tab:gray", linestyle="--")
    failures = [(t, s.failures) for t, s in zip(elapsed, result.series, strict=True) if s.failures]
    if failures:
        load_ax.bar([t for t, _ in failures], [n for _, n in failures], color="tab:red", label="failures")
    load_ax.set_ylabel("per second")
    load_ax.legend(loc="upper left")
    load_ax.set_title(f"Locust against {result.host}")
    latency_ax.plot(
        elapsed,
        [s.p95_ms if s.p95_ms is not None else float("nan") for s in result.series],
        color="tab:orange",
    )
    latency_ax.set_ylabel("p95 ms")
    if replicas:
        replicas_ax = axes[2]
        for name, series in replicas.items():
            points = list(series)
            replicas_ax.step(
                [at - start for at, _ in points], [n for _, n in points], where="post", label=name
            )
        replicas_ax.set_ylabel("pods")
        replicas_ax.legend(loc="upper left")
    axes[-1].set_xlabel("seconds since the load started")
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=90)
    plt.close(fig)
    return out
