"""How much load one Locust process makes here, and what the library runner costs against plain Locust.

    python -m loadtests.bench [--users 10] [--seconds 10] [--against reference|standin] [--cpu-ms N]
    python -m loadtests.bench --host URL

``--against standin`` (the default) starts the lab's stand-in program as the frontend on 127.0.0.1
(loadtests/standin_frontend.py; ``--cpu-ms`` is the CPU it spends per request, 0 by default, the lab's pods
13), ``--against reference`` the Python reference frontend (loadtests/reference_frontend.py), each in a
process of its own; ``--host`` loads a frontend that is already running. Shoppers do not wait between
tasks, so the figure is the most one Locust process sends. Both runs use the same users, duration and
host: first plain ``locust --headless``, then ``run_load``. Each line shows requests per second and the
CPU the Locust process used (one core is 100%: near that, Locust is the limit; well below, the server
is). Nothing is asserted: the figures depend on the machine.
"""

from __future__ import annotations

import argparse
import csv
import os
import resource
import statistics
import subprocess
import sys
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

import locust  # noqa: F401  (before anything loads ssl: Locust patches the standard library with gevent)

from loadtests import reference_frontend, standin_frontend
from loadtests.runner import run_load

LOCUSTFILE = Path(__file__).with_name("locustfile.py")


@dataclass(frozen=True)
class Measurement:
    how: str
    requests: int
    failures: int
    seconds: float
    cpu_seconds: float
    server_cpu_seconds: float | None = None

    @property
    def rps(self) -> float:
        return self.requests / self.seconds

    @property
    def cpu_percent(self) -> float:
        return 100 * self.cpu_seconds / self.seconds

    def line(self) -> str:
        per_request = 1000 * self.cpu_seconds / max(self.requests, 1)
        server = ""
        if self.server_cpu_seconds is not None:
            server = f", server CPU {100 * self.server_cpu_seconds / self.seconds:.0f}%"
        return (
            f"{self.how:<26} {self.rps:6.0f} req/s {self.requests:7d} requests {self.failures:4d} failed  "
            f"Locust CPU {self.cpu_percent:.0f}% of a core ({per_request:.2f} ms/request){server}"
        )


def _cpu_seconds(who: int) -> float:
    usage = resource.getrusage(who)
    return usage.ru_utime + usage.ru_stime


def process_cpu_seconds(pid: int | None) -> float | None:
    """CPU (user + system) a process has used so far, from /proc; None where there is no /proc."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, TypeError):
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def with_server_cpu(measure: Callable[[], Measurement], server_pid: int | None) -> Measurement:
    before = process_cpu_seconds(server_pid)
    measurement = measure()
    after = process_cpu_seconds(server_pid)
    if before is None or after is None:
        return measurement
    return replace(measurement, server_cpu_seconds=after - before)


def plain_locust(host: str, users: int, seconds: int) -> Measurement:
    """``locust --headless`` in a child process; its totals from the CSV it writes."""
    env = {**os.environ, "BOUTIQUE_WAIT_MIN": "0", "BOUTIQUE_WAIT_MAX": "0"}
    env.pop("BOUTIQUE_STEP_USERS", None)
    with tempfile.TemporaryDirectory() as tmp:
        prefix = Path(tmp) / "plain"
        command = [
            *(str(Path(sys.executable).with_name("locust")), "-f", str(LOCUSTFILE), "--host", host),
            *("--headless", "-u", str(users), "-r", str(users), "-t", f"{seconds}s"),
            *("--csv", str(prefix), "--only-summary", "--loglevel", "WARNING"),
        ]
        cpu_before = _cpu_seconds(resource.RUSAGE_CHILDREN)
        subprocess.run(command, env=env, capture_output=True, timeout=seconds + 60)
        cpu = _cpu_seconds(resource.RUSAGE_CHILDREN) - cpu_before
        with open(f"{prefix}_stats.csv") as stats:
            total = next(row for row in csv.DictReader(stats) if row["Name"] == "Aggregated")
    return Measurement(
        "plain locust --headless", int(total["Request Count"]), int(total["Failure Count"]), seconds, cpu
    )


def library_runner(host: str, users: int, seconds: int) -> Measurement:
    """``run_load`` in this process (per-second series included)."""
    cpu_before = _cpu_seconds(resource.RUSAGE_SELF)
    result = run_load(host, users=users, spawn_rate=users, duration_s=seconds, wait_s=(0, 0))
    cpu = _cpu_seconds(resource.RUSAGE_SELF) - cpu_before
    return Measurement("loadtests.runner.run_load", result.requests, result.failures, result.duration_s, cpu)


def start_frontend(kind: str, cpu_ms: int) -> tuple[subprocess.Popen, str]:
    if kind == "reference":
        return reference_frontend.start_process()
    return standin_frontend.start_process(standin_frontend.binary(), cpu_ms_per_request=cpu_ms)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="RPS of one Locust process; the runner's overhead")
    parser.add_argument("--users", type=int, default=10)
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--host", help="a running frontend (instead of starting one)")
    parser.add_argument("--against", choices=("standin", "reference"), default="standin")
    parser.add_argument("--cpu-ms", type=int, default=0, help="the stand-in's CPU per request, ms")
    parser.add_argument("--rounds", type=int, default=2, help="alternate the two runs this many times")
    args = parser.parse_args(argv)
    server, host = (None, args.host) if args.host else start_frontend(args.against, args.cpu_ms)
    server_pid = server.pid if server else None
    try:
        what = args.host or f"the {args.against} frontend at {host}"
        if not args.host and args.against == "standin":
            what += f", {args.cpu_ms} ms of CPU per request"
        print(f"{args.users} users, no wait, {args.seconds} s per run, against {what}")
        print(f"CPUs: {os.cpu_count()}, load average before: {os.getloadavg()[0]:.2f}")
        plain, runner = [], []
        for _ in range(args.rounds):
            plain.append(with_server_cpu(lambda: plain_locust(host, args.users, args.seconds), server_pid))
            print(plain[-1].line())
            runner.append(with_server_cpu(lambda: library_runner(host, args.users, args.seconds), server_pid))
            print(runner[-1].line())
        plain_rps, runner_rps = (statistics.median(m.rps for m in runs) for runs in (plain, runner))
        overhead = 100 * (plain_rps - runner_rps) / plain_rps if plain_rps else float("nan")
        print(f"median: plain locust {plain_rps:.0f} req/s, runner {runner_rps:.0f} req/s")
        print(f"runner overhead vs plain locust: {overhead:+.1f}% (fewer requests per second)")
        print(f"load average after: {os.getloadavg()[0]:.2f}")
    finally:
        if server is not None:
            standin_frontend.stop(server)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
