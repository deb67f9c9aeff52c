"""The machines' claim: the offline tests boot machines beside the lab's session, whose ``lab down`` sweeps
what a killed run left. A live run's machines are its own: neither a second run nor the sweep touches them.
The holder here is a real second process, as the offline tests are beside the lab's session."""

from __future__ import annotations

import shutil
import subprocess
import sys
from collections.abc import Iterator

import pytest

from provisioning.lab import locks
from provisioning.lab.machines import machines

HOLD = """
import sys
from provisioning.lab import locks
from provisioning.lab.machines import machines
held = locks.claim(machines.OWNER_LOCK, wait=machines.CLAIM_WAIT)
print("held" if held else "refused", flush=True)
sys.stdin.read()
"""


@pytest.fixture
def other_run() -> Iterator[None]:
    """Another process holding the machines until the test ends."""
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLD], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
        yield
    finally:
        holder.communicate(timeout=10)


def test_a_second_run_is_refused_while_another_holds_the_machines(
    other_run: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(machines, "CLAIM_WAIT", 0.5)
    with pytest.raises(machines.MachineError, match="in use by another run"):
        machines.Machines(["k8s-master"]).up()


def test_the_sweep_leaves_a_live_runs_machines_alone(other_run: None) -> None:
    planted = machines.HOME / "k8s-worker9"
    (planted / "rootfs").mkdir(parents=True)
    try:
        assert machines.sweep() == []
        assert planted.exists()
    finally:
        shutil.rmtree(planted)


def test_the_claim_is_free_again_once_its_holder_ends() -> None:
    with subprocess.Popen([sys.executable, "-c", HOLD], stdin=subprocess.PIPE, stdout=subprocess.PIPE) as p:
        assert p.stdout is not None and p.stdout.readline().strip() == b"held"
        p.kill()  # a killed run: the kernel drops its lock
    lock = locks.claim(machines.OWNER_LOCK)
    assert lock is not None
    locks.release(lock)


def test_a_run_waits_out_the_moment_a_sweep_holds_the_machines() -> None:
    sweep_moment = HOLD.replace("sys.stdin.read()", "import time; time.sleep(1)")
    with subprocess.Popen([sys.executable, "-c", sweep_moment], stdout=subprocess.PIPE) as p:
        assert p.stdout is not None and p.stdout.readline().strip() == b"held"
        lock = locks.claim(machines.OWNER_LOCK, wait=machines.CLAIM_WAIT)
    assert lock is not None
    locks.release(lock)
