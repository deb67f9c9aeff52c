"""The revert journal outlives the process: a run killed with SIGKILL in the middle of each kind of
fault is undone by the next run, which gives the platform back exactly as it was before (the steady
-state snapshot's diff is empty). Leases: only the holder's process, or an expired renewal, ends one."""

from __future__ import annotations

import os
import select
import signal
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import SimpleNamespace as NS

import pytest

from boutique_suite.actions import journal, reverts
from boutique_suite.clients.argocd import ArgoCDClient
from boutique_suite.clients.kube import Kube, connect_to
from boutique_suite.expectations import gitops_checks, steady
from boutique_suite.run import runlabel, targets, waits
from provisioning import LayerRunner
from tests.interrupted_run import FAULTS

ROOT = Path(__file__).resolve().parents[1]
LAB = targets.load("lab")
APP = LAB.application


def lease(holder: str, renewed: datetime | None, seconds: int = 60) -> NS:
    return NS(
        spec=NS(holder_identity=holder, renew_time=renewed, acquire_time=None, lease_duration_seconds=seconds)
    )


def test_a_lease_of_this_host_lives_exactly_as_long_as_its_process() -> None:
    assert journal.lease_alive(lease(journal.holder_identity(), None))
    finished = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True
    )
    gone = f"{journal.holder_identity().split('/')[0]}/{finished.stdout.strip()}/123"
    assert not journal.lease_alive(lease(gone, datetime.now(UTC)))


def test_a_lease_of_another_host_lives_while_it_is_renewed() -> None:
    now = datetime.now(UTC)
    assert journal.lease_alive(lease("elsewhere/42/7", now - timedelta(seconds=30)), now)
    assert not journal.lease_alive(lease("elsewhere/42/7", now - timedelta(seconds=61)), now)
    assert not journal.lease_alive(lease("elsewhere/42/7", None), now)


@pytest.fixture(scope="module")
def platform() -> tuple[Kube, ArgoCDClient]:
    LayerRunner(LAB).require(4)
    kube = connect_to(LAB, runlabel.new_run_id())
    return kube, gitops_checks.argocd_client(LAB)


@pytest.fixture
def killed_run(platform: tuple[Kube, ArgoCDClient]) -> Iterator[str]:
    run_id = f"killed-{runlabel.new_run_id()}"
    yield run_id
    reverts.clean_leftovers(platform[0], LAB)  # whatever the test left, even when it failed


@pytest.mark.lab
@pytest.mark.parametrize("fault", list(FAULTS))
def test_a_run_killed_mid_fault_is_undone_by_the_next_run(
    platform: tuple[Kube, ArgoCDClient], killed_run: str, fault: str
) -> None:
    kube, argocd = platform
    reverts.clean_leftovers(kube, LAB)
    before = steady.snapshot(LAB, kube, argocd, APP)
    proc = subprocess.Popen(
        [sys.executable, "-m", "tests.interrupted_run", fault],
        cwd=ROOT,
        env={**os.environ, "BOUTIQUE_RUN_ID": killed_run},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        ready, _, _ = select.select([proc.stdout], [], [], LAB.timeouts.rollout)
        said = proc.stdout.readline() if ready else ""  # type: ignore[union-attr]
        if said.strip() != "injected":
            proc.kill()
            pytest.fail(f"the run did not inject {fault}: {proc.communicate()[1][-2000:]}", pytrace=False)
        assert killed_run in journal.live_runs(kube)
        injected = steady.snapshot(LAB, kube, argocd, APP)
        assert steady.diff(before, injected), f"{fault} did not change the platform"
        written = journal.entries(kube, journal.object_name("journal", killed_run))
        assert written, f"{fault} is not in the run's journal"
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    assert killed_run not in journal.live_runs(kube)

    undone = reverts.clean_leftovers(kube, LAB)

    assert {e.description for e in written} <= {u.split(" (left by run")[0] for u in undone}, undone
    assert journal.entries(kube, journal.object_name("journal", killed_run)) == []

    def restored() -> waits.Check:
        left = steady.diff(before, steady.snapshot(LAB, kube, argocd, APP))
        return waits.pending(f"differs: {left}") if left else waits.succeeded()

    waits.until(restored, timeout=LAB.timeouts.rollout, interval=2, what=f"the platform as before {fault}")
