"""The lab's one process supervisor. Platform processes (redis, Argo CD's components, ...): start detached,
record the PID, tell whether it still runs, stop it; one directory per process under ``PLATFORM``. And the
liveness and signalling every other part of the lab uses for processes it did not start here (the
control plane kwokctl starts): ``alive``, ``running_from``, ``kill``, ``wait_gone``."""

from __future__ import annotations

import contextlib
import functools
import json
import os
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

from boutique_suite.run import waits

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


def _state(name: str, home: Path | None = None) -> Path:
    return (home or PLATFORM) / "run" / f"{name}.json"


def log_path(name: str, home: Path | None = None) -> Path:
    return (home or PLATFORM) / "logs" / f"{name}.log"


def alive(pid: int | None, program: str | None = None) -> bool:
    """``pid`` runs (neither gone nor a zombie) and, when ``program`` is given, runs that program (same
    file name: a reused PID of another program is not ours)."""
    if not pid:
        return False
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")[0].decode(errors="replace")
    except OSError:
        return False
    if stat.rsplit(")", 1)[1].split()[0] in ("Z", "X"):
        return False
    # redis rewrites its title ("/usr/bin/redis-server 127.0.0.1:26379"): compare the program name only.
    return program is None or Path(cmdline.split(" ")[0]).name == Path(program).name


def find(match: Callable[[list[str]], bool]) -> dict[int, list[str]]:
    """{pid: argv} of every process (kernel threads aside) whose argv ``match`` accepts."""
    found = {}
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            argv = (proc / "cmdline").read_bytes().decode(errors="replace").split("\0")
        except OSError:
            continue
        if argv[-1] == "":
            argv.pop()
        if argv and match(argv):
            found[int(proc.name)] = argv
    return found


def running_from(directory: Path) -> dict[int, str]:
    """{pid: program name} of every process whose program lies in ``directory``."""
    prefix = str(directory).rstrip("/") + "/"
    return {pid: Path(argv[0]).name for pid, argv in find(lambda argv: argv[0].startswith(prefix)).items()}


def kill(pids: Iterable[int], sig: int, group: bool = False) -> None:
    """Send ``sig`` to each PID (to its process group with ``group``); one already gone is no error."""
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            (os.killpg if group else os.kill)(pid, sig)


def wait_gone(pids: Iterable[int], timeout: float) -> bool:
    """Wait up to ``timeout`` seconds until none of ``pids`` runs; True when none does."""
    pids = list(pids)

    def gone() -> waits.Check:
        left = [pid for pid in pids if alive(pid)]
        return waits.pending(f"still running: {left}") if left else waits.succeeded()

    try:
        waits.until(gone, timeout=timeout, what="processes gone", interval=0.1)
    except waits.WaitTimeout:
        return False
    return True


def _program(argv: list[str]) -> str:
    """The program the process runs once started: ``nsenter ... -- prog`` becomes ``prog`` (exec)."""
    if Path(argv[0]).name == "nsenter" and "--" in argv:
        return argv[argv.index("--") + 1]
    return argv[0]


def info(name: str, home: Path | None = None) -> Proc:
    data = _recorded(name, home)
    pid = data.get("pid")
    return Proc(name, pid, alive(pid, data.get("argv0")), data.get("port"), log_path(name, home))


def port_open(port: int, timeout: float = 0.5) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(timeout)
        return sock.connect_ex(("127.0.0.1", port)) == 0


def _recorded(name: str, home: Path | None = None) -> dict:
    try:
        return json.loads(_state(name, home).read_text())
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
    home: Path | None = None,
) -> Proc:
    """Start ``argv`` detached unless it already runs with the same arguments (and started after
    ``not_before``, an epoch); wait until it listens on 127.0.0.1:``port`` (or until ``ready()``).
    ``preexec`` runs in the child before exec (joining a cgroup). ``home`` holds the record and the log:
    ``PLATFORM`` by default, which ``lab down`` stops; another home's processes are its owner's."""
    if ready is None:
        if port is None:
            raise ValueError(f"{name}: give a port or a readiness check")
        ready = functools.partial(port_open, port)
    current = info(name, home)
    record = _recorded(name, home)
    same = record.get("argv") == argv and record.get("started_at", 0) >= not_before
    if current.alive and same and ready():
        return current
    stop(name, home=home)
    if port is not None and port_open(port):
        raise ProcessError(f"{name}: 127.0.0.1:{port} is already in use by another process")
    log = log_path(name, home)
    log.parent.mkdir(parents=True, exist_ok=True)
    _state(name, home).parent.mkdir(parents=True, exist_ok=True)
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
    _state(name, home).write_text(
        json.dumps(
            {"pid": proc.pid, "argv0": _program(argv), "argv": argv, "port": port, "started_at": time.time()}
        )
    )

    def started() -> waits.Check:
        if ready():
            return waits.succeeded()
        if proc.poll() is not None:
            tail = " | ".join(log.read_text(errors="replace").strip().splitlines()[-3:])
            return waits.failed(f"{name} exited with {proc.returncode} during start (log {log}): {tail}")
        return waits.pending(f"not yet (log {log})")

    what = f"{name} listening on 127.0.0.1:{port}" if port is not None else f"{name} ready"
    try:
        waits.until(started, timeout=wait, what=what, interval=0.2, error=ProcessError)
    except ProcessError:
        if proc.poll() is None:
            stop(name, home=home)
        raise
    return info(name, home)


def stop(name: str, grace: float = 10, home: Path | None = None) -> bool:
    """Stop the process (TERM, then KILL). True when one was running."""
    current = info(name, home)
    _state(name, home).unlink(missing_ok=True)
    if not current.alive or current.pid is None:
        return False
    kill([current.pid], signal.SIGTERM, group=True)
    wait_gone([current.pid], grace)
    kill([current.pid], signal.SIGKILL, group=True)
    return True


def recorded(home: Path | None = None) -> list[str]:
    """Names of every process this module started in ``home`` and has not stopped."""
    return sorted(path.stem for path in ((home or PLATFORM) / "run").glob("*.json"))
