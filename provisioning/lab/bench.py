"""Lab timings, printed (never asserted): cold build per component, warm up, idempotent up, down.

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
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
