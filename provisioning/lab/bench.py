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

from boutique_suite.run import targets, waits
from provisioning.lab import build, lab_status, manager, recipes

REPLACE_TIMEOUT = 300  # seconds for a force-deleted frontend pod's replacement to be Ready


def _timed(fn) -> float:  # type: ignore[no-untyped-def]
    started = time.monotonic()
    fn()
    return time.monotonic() - started


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rebuild", action="store_true")
    parser.add_argument("--cycles", type=int, default=2, help="down/up cycles to time (default 2)")
    args = parser.parse_args(argv)

    comps = recipes.components()
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

    from provisioning.lab.services import argocd

    with_argocd = _timed(argocd.ensure)
    again = _timed(argocd.ensure)
    print(
        f"Argo CD (install.yaml in the cluster, to its admin login) on the warm lab: {with_argocd:.1f} s "
        f"(again: {again:.1f} s)"
    )
    from provisioning.lab.services import monitoring

    monitoring.stop()
    with_monitoring = _timed(monitoring.ensure)
    again = _timed(monitoring.ensure)
    print(
        "kube-state-metrics + Prometheus + Alertmanager + Slack receiver: "
        f"{with_monitoring:.1f} s (again: {again:.1f} s)"
    )
    _print_data_plane()
    _print_scenario_timings()
    return 0


def _print_data_plane() -> None:
    """The real nodes' budgets: the Boutique deployed by Argo CD, a force-deleted pod replaced, idle CPU."""
    from boutique_suite.run import targets
    from provisioning import LayerRunner
    from provisioning.lab import kubectl

    runtime = lab_status.node_runtime()
    print(f"nodes: {runtime.reason if runtime else 'lab not started'}")
    if not runtime or runtime.kind != "real":
        return
    started = time.monotonic()
    LayerRunner(targets.load("lab")).require(4)
    print(
        f"layers 3-4 ensured, Application Synced + Healthy (12 Deployments available): "
        f"{time.monotonic() - started:.1f} s"
    )
    print(f"force-deleted frontend pod replaced and Ready: {_replace_frontend_pod(kubectl.run):.1f} s")
    print(f"idle lab (every lab process and container, 10 s sample): {_idle_cores(10):.2f} cores")


def _replace_frontend_pod(kubectl) -> float:  # type: ignore[no-untyped-def]
    ns, selector = "boutique-dev", "app=frontend"
    old = kubectl("-n", ns, "get", "pods", "-l", selector, "-o", "jsonpath={.items[0].metadata.name}")
    started = time.monotonic()
    kubectl("-n", ns, "delete", "pod", old, "--grace-period=0", "--force", "--wait=false")

    def replaced() -> waits.Check:
        ready = kubectl(
            "-n",
            ns,
            "get",
            "pods",
            "-l",
            selector,
            "-o",
            "jsonpath={range .items[*]}{.metadata.name}="
            "{.status.conditions[?(@.type=='Ready')].status} {end}",
        )
        if any(p.split("=")[1] == "True" for p in ready.split() if not p.startswith(old)):
            return waits.succeeded()
        return waits.pending(f"no Ready replacement of {old} yet")

    waits.until(replaced, timeout=REPLACE_TIMEOUT, what="frontend pod replaced", interval=0.2)
    return time.monotonic() - started


def _cpu_seconds() -> float:
    """CPU time of the lab's processes (control plane, platform, node daemons) and of the nodes' pods."""
    from pathlib import Path

    from provisioning.lab.machines import cgroups

    ticks = 0
    markers = (
        b"/.kwok/",
        b"/.cache/boutique-lab/",
        b"/boutique-lab",
        b"prometheus",
        b"alertmanager",
        b"redis-server",
    )
    for proc in Path("/proc").iterdir():
        if proc.name.isdigit():
            try:
                if any(m in (proc / "cmdline").read_bytes() for m in markers):
                    fields = (proc / "stat").read_text().rsplit(")", 1)[1].split()
                    ticks += int(fields[11]) + int(fields[12])
            except (OSError, ValueError):
                continue
    seconds = ticks / 100
    for host in manager.NET.hosts:
        usage = Path("/sys/fs/cgroup/cpuacct") / cgroups.cgroup_parent(host.name) / "cpuacct.usage"
        if usage.exists():
            seconds += int(usage.read_text()) / 1e9
    return seconds


def _idle_cores(window: float) -> float:
    before = _cpu_seconds()
    time.sleep(window)
    return (_cpu_seconds() - before) / window


def _print_scenario_timings() -> None:
    summary = targets.REPORTS / "summary.json"
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
