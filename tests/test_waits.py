"""The wait helper's three outcomes, its watch-driven wake-up, and ``consistently``."""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Iterator

import pytest

from boutique_suite.run import waits


def sequence(*checks: waits.Check):  # type: ignore[no-untyped-def]
    answers = list(checks)

    def probe() -> waits.Check:
        return answers.pop(0) if len(answers) > 1 else answers[0]

    return probe


def test_succeeds_after_pending() -> None:
    probe = sequence(waits.pending("a"), waits.pending("b"), waits.succeeded("done", 42))
    result = waits.until(probe, timeout=5, what="thing", interval=0.01)
    assert result.check.value == 42
    assert result.evaluations == 3


def test_failure_stops_at_once_without_waiting_for_timeout() -> None:
    probe = sequence(waits.pending("starting"), waits.failed("ImagePullBackOff"))
    started = time.monotonic()
    with pytest.raises(waits.WaitFailed, match=r"thing: failed after .*ImagePullBackOff"):
        waits.until(probe, timeout=30, what="thing", interval=0.01)
    assert time.monotonic() - started < 2


def test_pending_until_timeout_reports_last_detail() -> None:
    with pytest.raises(waits.WaitTimeout, match=r"thing: still pending after 0.2s: 1/3 ready"):
        waits.until(sequence(waits.pending("1/3 ready")), timeout=0.2, what="thing", interval=0.05)


class LabError(Exception):
    pass


@pytest.mark.parametrize(
    ("last", "words"),
    [(waits.failed("exited"), "failed after"), (waits.pending("1/3"), "still pending after")],
)
def test_a_modules_own_error_replaces_both_wait_errors(last: waits.Check, words: str) -> None:
    with pytest.raises(LabError, match=rf"thing: {words} .*{last.detail}"):
        waits.until(
            sequence(waits.pending("a"), last), timeout=0.1, what="thing", interval=0.01, error=LabError
        )


def test_probe_must_answer_with_an_outcome() -> None:
    with pytest.raises(TypeError, match="must return"):
        waits.until(lambda: True, timeout=1, what="thing")  # type: ignore[arg-type,return-value]


def test_watch_event_wakes_the_wait_before_the_interval() -> None:
    """With a long poll interval, a watch event must make the probe run again at once."""
    state = {"ready": False}
    events: queue.Queue[object] = queue.Queue()

    def watch() -> Iterator[object]:
        while True:
            item = events.get()
            if item is None:
                return
            yield item

    def flip() -> None:
        time.sleep(0.2)
        state["ready"] = True
        events.put("MODIFIED")

    threading.Thread(target=flip, daemon=True).start()
    started = time.monotonic()
    probe = lambda: waits.succeeded() if state["ready"] else waits.pending("not yet")  # noqa: E731
    waits.until(probe, timeout=30, what="watched", interval=20, wake=watch())
    events.put(None)
    assert time.monotonic() - started < 5


def test_broken_watch_falls_back_to_polling() -> None:
    def broken() -> Iterator[object]:
        raise ConnectionError("watch dropped")
        yield  # pragma: no cover

    calls = {"n": 0}

    def probe() -> waits.Check:
        calls["n"] += 1
        return waits.succeeded() if calls["n"] >= 3 else waits.pending()

    assert waits.until(probe, timeout=5, what="x", interval=0.01, wake=broken()).evaluations == 3


def test_consistently_holds() -> None:
    result = waits.consistently(sequence(waits.succeeded("ok")), duration=0.2, what="healthy", interval=0.05)
    assert result.evaluations >= 3


@pytest.mark.parametrize("breaking", [waits.failed("Degraded"), waits.pending("progressing")])
def test_consistently_fails_on_first_non_success(breaking: waits.Check) -> None:
    probe = sequence(waits.succeeded(), waits.succeeded(), breaking)
    with pytest.raises(waits.WaitFailed, match="healthy: stopped holding after"):
        waits.consistently(probe, duration=10, what="healthy", interval=0.01)
