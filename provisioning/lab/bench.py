"""Lab timings, printed (never asserted): cold build per component, warm up, idempotent up, down, the lab
with Argo CD, and the recovery latencies the last scenario run measured (reports/summary.json).

Cold build times are the ones recorded when each cache entry was built (``manifest.json``); pass
``--rebuild`` to rebuild every component now (Go's build cache stays warm, so that measures a rebuild,
not a cold machine). Usage: ``python -m provisioning.lab.bench [--rebuild] [--cycles N]``.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time

from provisioning.lab import build, manager


def _timed(fn) -> float:  # type: ignore[no-untyped-def]
    started = time.monotonic()
    fn()
    return time.monotonic() - started


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rebuild", action="store_true")
    parser.add_argument("--cycles", type=int, default=2, help="down/up cycles to time (default 2)")
    args = parser.parse_args(argv)

    comps = build.components()
    if args.rebuild:
        for comp in comps.values():
            print(f"rebuild {comp.name:<16} {_timed(lambda c=comp: build.build(c, force=True)):7.1f} s")
    build.ensure_all()
    total = 0.0
    for comp in comps.values():
        seconds = json.loads((comp.directory / build.MANIFEST).read_text())["built_seconds"]
        total += seconds
        print(f"cold build {comp.name:<16} {comp.version:<8} {seconds:7.1f} s (recorded at build)")
    print(f"cold build total{'':<18} {total:7.1f} s")

    ups, downs = [], []
    for _ in range(args.cycles):
        downs.append(_timed(manager.down))
        ups.append(_timed(manager.up))
    again = _timed(manager.up)
    print(
        f"warm up (from nothing, binaries cached): {', '.join(f'{u:.1f}' for u in ups)} s "
        f"(median {statistics.median(ups):.1f} s)"
    )
    print(f"up again while healthy (idempotent):     {again:.2f} s")
    print(f"down:                                    {', '.join(f'{d:.1f}' for d in downs[1:]) or '-'} s")

    from provisioning.lab import argocd

    with_argocd = _timed(argocd.ensure)
    again = _timed(argocd.ensure)
    print(f"Argo CD + git server + redis on the warm lab: {with_argocd:.1f} s (again: {again:.1f} s)")
    from provisioning.lab import monitoring

    monitoring.stop()
    with_monitoring = _timed(monitoring.ensure)
    again = _timed(monitoring.ensure)
    print(
        "kube-state-metrics + Prometheus + Alertmanager + Slack receiver: "
        f"{with_monitoring:.1f} s (again: {again:.1f} s)"
    )
    _print_scenario_timings()
    return 0


def _print_scenario_timings() -> None:
    summary = build.HERE.parents[1] / "reports" / "summary.json"
    if not summary.exists():
        print("scenario timings: none yet (run ./run tests)")
        return
    data = json.loads(summary.read_text())
    print(f"scenario timings of the last run ({data['finished']}, target {data['target']}):")
    for entry in data["scenarios"].values():
        for name, seconds in (entry.get("timings_seconds") or {}).items():
            print(f"  {entry['scenario'][:70]:<70} {name:<28} {seconds:8.2f} s")


if __name__ == "__main__":
    raise SystemExit(main())
