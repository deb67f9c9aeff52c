"""The lab's stand-in program as a frontend on 127.0.0.1, on its own (SERVICE=frontend, no backends): what the
bench loads with ``--against standin`` and what the route-contract tests prove the locustfile against.

The binary is the lab's cached build (provisioning/lab/services/images.py builds it once, keyed by its
source)."""

from __future__ import annotations

import os
import socket
import subprocess
import time
from pathlib import Path

import requests


class StandinError(RuntimeError):
    """The stand-in frontend could not be started; the message says why."""


def binary() -> Path:
    """The stand-in binary from the lab's build cache (built now if it is not cached)."""
    from provisioning.lab.services import images

    return images.build_standin()


def start_process(
    program: Path, cpu_ms_per_request: int = 0, port: int | None = None, timeout_s: float = 30
) -> tuple[subprocess.Popen, str]:
    """Start ``program`` as the frontend on ``port`` of 127.0.0.1 (default: one free now), spending
    ``cpu_ms_per_request`` ms of CPU on each request as the lab's pods do (0: none); the process and its
    URL once /_healthz answers 200."""
    port = port or _unused_port()
    env = {key: value for key, value in os.environ.items() if not key.endswith("_ADDR")}
    env.update(
        SERVICE="frontend",
        PORT=str(port),
        LISTEN_HOST="127.0.0.1",
        CPU_MS_PER_REQUEST=str(cpu_ms_per_request),
    )
    process = subprocess.Popen([str(program)], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_healthy(url, process, timeout_s)
    except BaseException:
        stop(process)
        raise
    return process, url


def _unused_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_healthy(url: str, process: subprocess.Popen, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise StandinError(
                f"{process.args[0]} exited with {process.returncode} before serving {url}/_healthz"
            )
        try:
            if requests.get(f"{url}/_healthz", timeout=1).status_code == 200:
                return
        except requests.ConnectionError:
            pass
        time.sleep(0.2)
    raise StandinError(f"{url}/_healthz did not answer 200 within {timeout_s} s")


def stop(process: subprocess.Popen) -> None:
    process.terminate()
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
