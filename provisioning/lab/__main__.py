"""The offline lab by hand: python -m provisioning.lab up | down | status | build."""

from __future__ import annotations

import argparse
import json
import sys
import time

from provisioning.lab import build, lab_status, manager, processes, recipes


def _print_status(st: lab_status.Status) -> None:
    state = "ready" if st.healthy else f"NOT ready: {st.problem}"
    print(f"lab {manager.NAME}: {state}")
    print(f"  kubeconfig: {st.kubeconfig} (context {st.context})")
    runtime = lab_status.node_runtime()
    if runtime:
        print(f"  nodes: {runtime.reason}")
    for c in st.components:
        _row(c.name, c.pid, c.address, c.alive)
    for name in processes.recorded():
        if name.startswith("node-"):
            continue
        p = processes.info(name)
        _row(name, p.pid, f"127.0.0.1:{p.port}" if p.port else "no TCP port", p.alive)


def _row(name: str, pid: int | None, address: str, alive: bool) -> None:
    print(f"  {name:<30} pid {pid or '-':<8} {address:<16} {'running' if alive else 'DOWN'}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m provisioning.lab", description=__doc__)
    parser.add_argument("command", choices=["up", "down", "status", "build"])
    parser.add_argument("--json", action="store_true", help="status as JSON")
    parser.add_argument(
        "--through", type=int, metavar="LAYER", help="build: only what the platform's layers 0..LAYER run"
    )
    args = parser.parse_args(argv)
    try:
        if args.command == "build":
            return build.main([] if args.through is None else ["--through", str(args.through)])
        if args.command == "up":
            started = time.monotonic()
            changed = manager.up()
            print(
                f"lab {'started' if changed else 'already running, nothing started'} "
                f"in {time.monotonic() - started:.1f}s"
            )
            _print_status(lab_status.status())
        elif args.command == "down":
            started = time.monotonic()
            stopped = manager.down()
            print(
                f"lab stopped in {time.monotonic() - started:.1f}s"
                + (f" ({', '.join(stopped)})" if stopped else " (nothing was running)")
            )
        else:
            st = lab_status.status()
            if args.json:
                print(json.dumps(st.as_dict(), indent=2))
            else:
                _print_status(st)
            return 0 if st.healthy else 1
    except (manager.LabError, recipes.BuildError) as exc:
        print(f"lab {args.command}: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"lab {args.command}: interrupted", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
