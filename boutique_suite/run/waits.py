"""The one wait helper: a probe answers succeeded, pending or failed; pending keeps waiting,
failed stops at once (Argo CD's e2e ``Expect``). ``consistently`` backs "stays true for N seconds".

Probes are re-evaluated whenever something changes (a Kubernetes watch passed as ``wake``) and at
least every ``interval`` seconds, so a watch makes waits react at once without busy polling.
"""

from __future__ import annotations

import enum
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass


class Outcome(enum.Enum):
    SUCCEEDED = "succeeded"
    PENDING = "pending"
    FAILED = "failed"


@dataclass(frozen=True)
class Check:
    outcome: Outcome
    detail: str = ""
    value: object = None


def succeeded(detail: str = "", value: object = None) -> Check:
    return Check(Outcome.SUCCEEDED, detail, value)


def pending(detail: str = "", value: object = None) -> Check:
    return Check(Outcome.PENDING, detail, value)


def failed(detail: str, value: object = None) -> Check:
    return Check(Outcome.FAILED, detail, value)


Probe = Callable[[], Check]


class WaitFailed(AssertionError):
    """The probe reported a terminal failure: waiting longer cannot help."""


class WaitTimeout(AssertionError):
    """The probe was still pending when the time ran out."""


@dataclass(frozen=True)
class Waited:
    check: Check
    seconds: float
    evaluations: int


class _Waker:
    """Turns an iterable of change notifications (a watch) into an event the wait loop can sleep on."""

    def __init__(self, wake: Iterable[object] | None) -> None:
        self.event = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        if wake is not None:
            self._thread = threading.Thread(target=self._pump, args=(iter(wake),), daemon=True)
            self._thread.start()

    def _pump(self, items: Iterator[object]) -> None:
        try:
            for _ in items:
                self.event.set()
                if self._stop.is_set():
                    return
        except Exception:  # a broken watch only costs reaction time: polling continues
            return

    def sleep(self, seconds: float) -> None:
        self.event.wait(seconds)
        self.event.clear()

    def close(self) -> None:
        self._stop.set()
        self.event.set()


def _evaluate(probe: Probe) -> Check:
    result = probe()
    if not isinstance(result, Check):
        raise TypeError(f"probe {probe!r} must return succeeded()/pending()/failed(), got {result!r}")
    return result


def until(
    probe: Probe,
    *,
    timeout: float,
    what: str,
    interval: float = 1.0,
    wake: Iterable[object] | None = None,
    clock: Callable[[], float] = time.monotonic,
    error: Callable[[str], Exception] | None = None,
) -> Waited:
    """Wait until ``probe`` succeeds. Raise WaitFailed at the first failure, WaitTimeout at the deadline;
    ``error`` (a module's own exception type, which its callers catch) is raised instead of both."""
    start = clock()
    waker = _Waker(wake)
    evaluations = 0
    try:
        while True:
            check = _evaluate(probe)
            evaluations += 1
            elapsed = clock() - start
            if check.outcome is Outcome.SUCCEEDED:
                return Waited(check, elapsed, evaluations)
            if check.outcome is Outcome.FAILED:
                raise (error or WaitFailed)(f"{what}: failed after {elapsed:.1f}s: {check.detail}")
            if elapsed >= timeout:
                raise (error or WaitTimeout)(f"{what}: still pending after {timeout:g}s: {check.detail}")
            waker.sleep(min(interval, max(timeout - elapsed, 0.01)))
    finally:
        waker.close()


def consistently(
    probe: Probe,
    *,
    duration: float,
    what: str,
    interval: float = 1.0,
    clock: Callable[[], float] = time.monotonic,
) -> Waited:
    """Require ``probe`` to succeed at every evaluation for ``duration`` seconds.

    A pending answer counts as a violation here: "still healthy" means healthy every time we look.
    """
    start = clock()
    evaluations = 0
    while True:
        check = _evaluate(probe)
        evaluations += 1
        elapsed = clock() - start
        if check.outcome is not Outcome.SUCCEEDED:
            raise WaitFailed(f"{what}: stopped holding after {elapsed:.1f}s: {check.detail}")
        if elapsed >= duration:
            return Waited(check, elapsed, evaluations)
        time.sleep(min(interval, max(duration - elapsed, 0.01)))
