"""Local processes of the lab's platform layer (redis, Argo CD's components): start detached, record the
PID, tell whether it still runs, stop it. One directory per process under ``PLATFORM``."""

from __future__ import annotations

import contextlib
import functools
import json
import os
import signal
import socket
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

PLATFORM = Path(os.environ.get("KWOK_WORKDIR", Path.home() / ".kwok")) / "boutique-lab-platform"


class ProcessError(Exception):
    """A platform process could not be started; the message names it and its log."""


@dataclass(frozen=True)
class Proc:
    name: str
    pid: int | None
    alive: bool
    port: int | None
    log: Path


def _state(name: str) -> Path:
    return PLATFORM / "run" / f"{name}.json"


def log_path(name: str) -> Path:
    return PLATFORM / "logs" / f"{name}.log"


def _alive(pid: int | None, argv0: str | None) -> bool:
    if not pid:
        return False
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")[0].decode(errors="replace")
    except OSError:
        return False
    # redis rewrites its title ("/usr/bin/redis-server 127.0.0.1:26379"): compare the program name only.
    same = argv0 is None or Path(cmdline.split(" ")[0]).name == Path(argv0).name
    return stat.rsplit(")", 1)[1].split()[0] != "Z" and same


def _program(argv: list[str]) -> str:
    """The program the process runs once started: ``nsenter ... -- prog`` becomes ``prog`` (exec)."""
    if Path(argv[0]).name == "nsenter" and "--" in argv:
        return argv[argv.index("--") + 1]
    return argv[0]


def info(name: str) -> Proc:
    try:
        data = json.loads(_state(name).read_text())
    except (OSError, ValueError):
        data = {}
    pid = data.get("pid")
    return Proc(name, pid, _alive(pid, data.get("argv0")), data.get("port"), log_path(name))


def port_open(port: int, timeout: float = 0.5) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(timeout)
        return sock.connect_ex(("127.0.0.1", port)) == 0


def _recorded(name: str) -> dict:
    try:
        return json.loads(_state(name).read_text())
    except (OSError, ValueError):
        return {}


def start(
    name: str,
    argv: list[str],
    env: dict[str, str],
    port: int | None,
    wait: float = 60,
    not_before: float = 0.0,
    ready: Callable[[], bool] | None = None,
    preexec: Callable[[], None] | None = None,
) -> Proc:
    """Start ``argv`` detached unless it already runs with the same arguments (and started after
    ``not_before``, an epoch); wait until it listens on 127.0.0.1:``port`` (or until ``ready()``).
    ``preexec`` runs in the child before exec (joining a cgroup)."""
    if ready is None:
        if port is None:
            raise ValueError(f"{name}: give a port or a readiness check")
        ready = functools.partial(port_open, port)
    current = info(name)
    record = _recorded(name)
    same = record.get("argv") == argv and record.get("started_at", 0) >= not_before
    if current.alive and same and ready():
        return current
    stop(name)
    if port is not None and port_open(port):
        raise ProcessError(f"{name}: 127.0.0.1:{port} is already in use by another process")
    log = log_path(name)
    log.parent.mkdir(parents=True, exist_ok=True)
    _state(name).parent.mkdir(parents=True, exist_ok=True)
    with log.open("ab") as out:
        proc = subprocess.Popen(
            argv,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
            preexec_fn=preexec,
        )
    _state(name).write_text(
        json.dumps(
            {"pid": proc.pid, "argv0": _program(argv), "argv": argv, "port": port, "started_at": time.time()}
        )
    )
    deadline = time.monotonic() + wait
    while not ready():
        if proc.poll() is not None:
            tail = " | ".join(log.read_text(errors="replace").strip().splitlines()[-3:])
            raise ProcessError(f"{name} exited with {proc.returncode} during start (log {log}): {tail}")
        if time.monotonic() > deadline:
            stop(name)
            what = f"listen on 127.0.0.1:{port}" if port is not None else "become ready"
            raise ProcessError(f"{name} did not {what} within {wait:g}s (log {log})")
        time.sleep(0.2)
    return info(name)


def stop(name: str, grace: float = 10) -> bool:
    """Stop the process (TERM, then KILL). True when one was running."""
    current = info(name)
    _state(name).unlink(missing_ok=True)
    if not current.alive or current.pid is None:
        return False
    with contextlib.suppress(ProcessLookupError):
        os.killpg(current.pid, signal.SIGTERM)
    deadline = time.monotonic() + grace
    while _alive(current.pid, None) and time.monotonic() < deadline:
        time.sleep(0.1)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(current.pid, signal.SIGKILL)
    return True


def recorded() -> list[str]:
    """Names of every process this module started and has not stopped."""
    return sorted(path.stem for path in (PLATFORM / "run").glob("*.json"))
