"""Is a loopback port free, and who holds it: for the clear "port taken" errors of the lab's processes."""

from __future__ import annotations

import shutil
import socket
import subprocess

HOST = "127.0.0.1"


def taken(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((HOST, port))
            return False
        except OSError:
            pass
    # Bind can fail on connections of a just-stopped server lingering in TIME_WAIT, which do not stop a
    # new server (Go and Python listen with SO_REUSEADDR): only a listener counts as taken.
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.settimeout(1)
        return probe.connect_ex((HOST, port)) == 0


def owner(port: int) -> str:
    """Best effort: " by <process>" listening on ``port`` (via ss), for the error message."""
    if shutil.which("ss") is None:
        return ""
    out = subprocess.run(["ss", "-Hltnp", f"sport = :{port}"], capture_output=True, text=True).stdout
    return f" by {out.split('users:')[1].strip()}" if "users:" in out else ""
