"""The lab's process supervisor with real processes (no lab): start, liveness, stop, and the helpers the
lab's control plane is stopped with."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from provisioning.lab import processes

SLEEPER = [sys.executable, "-c", "import time; time.sleep(60)"]


@pytest.fixture(autouse=True)
def platform(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    monkeypatch.setattr(processes, "PLATFORM", tmp_path)
    yield tmp_path
    for name in processes.recorded():
        processes.stop(name, grace=1)


def test_a_started_process_is_alive_recorded_and_stopped() -> None:
    proc = processes.start("sleeper", SLEEPER, {}, port=None, wait=5, ready=lambda: True)
    assert proc.alive and processes.alive(proc.pid, sys.executable)
    assert processes.recorded() == ["sleeper"]
    assert processes.start("sleeper", SLEEPER, {}, port=None, ready=lambda: True).pid == proc.pid
    assert processes.stop("sleeper", grace=2)
    assert not processes.alive(proc.pid) and processes.recorded() == []
    assert not processes.stop("sleeper")


def test_a_process_of_another_home_is_neither_listed_nor_stopped_with_the_platforms(tmp_path: Path) -> None:
    own = tmp_path / "machines"  # as the machines keep theirs, out of ``lab down``'s reach
    proc = processes.start("machine-a", SLEEPER, {}, port=None, wait=5, ready=lambda: True, home=own)
    assert processes.recorded() == [] and processes.recorded(own) == ["machine-a"]
    assert not processes.stop("machine-a") and processes.alive(proc.pid)
    assert processes.info("machine-a", own).log.is_relative_to(own)
    assert processes.stop("machine-a", grace=2, home=own) and not processes.alive(proc.pid)


def test_a_process_that_exits_during_start_names_its_exit_code_and_log() -> None:
    argv = [sys.executable, "-c", "print('bad flag'); raise SystemExit(3)"]
    with pytest.raises(processes.ProcessError, match=r"crasher exited with 3 during start .*bad flag"):
        processes.start("crasher", argv, {}, port=None, wait=10, ready=lambda: False)


def test_a_process_never_ready_is_stopped_at_the_deadline() -> None:
    started = time.monotonic()
    with pytest.raises(processes.ProcessError, match=r"slow ready: still pending after 0.5s"):
        processes.start("slow", SLEEPER, {}, port=None, wait=0.5, ready=lambda: False)
    assert time.monotonic() - started < 5
    assert not processes.info("slow").alive


def test_alive_is_false_for_an_exited_process_another_program_or_no_pid() -> None:
    sleeper = subprocess.Popen(SLEEPER)
    try:
        assert processes.alive(sleeper.pid) and processes.alive(sleeper.pid, sys.executable)
        assert not processes.alive(sleeper.pid, "kube-apiserver")  # a reused PID is not the component
    finally:
        sleeper.kill()
        sleeper.wait()
    assert not processes.alive(sleeper.pid)
    assert not processes.alive(None) and not processes.alive(0)


def test_running_from_kill_and_wait_gone(tmp_path: Path) -> None:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "etcd").symlink_to(sys.executable)
    child = subprocess.Popen([str(bin_dir / "etcd"), "-c", "import time; time.sleep(60)"])
    try:
        assert processes.running_from(bin_dir) == {child.pid: "etcd"}
        argv = [str(bin_dir / "etcd"), "-c", "import time; time.sleep(60)"]
        assert processes.find(lambda found: found[-1].endswith("sleep(60)") and str(bin_dir) in found[0]) == {
            child.pid: argv
        }
        assert not processes.wait_gone([child.pid], timeout=0.2)
        processes.kill([child.pid], signal.SIGTERM)
        assert child.wait(timeout=5) == -signal.SIGTERM
        assert processes.wait_gone([child.pid], timeout=1)
        processes.kill([child.pid], signal.SIGKILL)  # already gone: no error
    finally:
        child.kill()
        child.wait()
