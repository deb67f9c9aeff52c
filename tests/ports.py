"""Ports for processes the tests start on 127.0.0.1."""

from __future__ import annotations

import random
import socket
from pathlib import Path

_handed_out: set[int] = set()


def free_port() -> int:
    """A free port below Linux's ephemeral range, handed out once per run.

    Below the ephemeral range, the tests' own client connections cannot take it between choosing it and
    the process binding it. Once per run, because a caller may choose several ports before anything binds
    (a shop chooses ten), and two choices must never be the same port.
    """
    low, _ = (int(n) for n in Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split())
    for _ in range(200):
        port = random.randrange(max(low - 12000, 1024), low)
        if port in _handed_out:
            continue
        with socket.socket() as sock:
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                continue
        _handed_out.add(port)
        return port
    raise AssertionError("no free port found below the ephemeral range")
