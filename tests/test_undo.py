"""The revert stack: newest first, every revert runs even when one fails."""

from __future__ import annotations

import pytest

from boutique_suite.run.undo import UndoStack


def test_reverts_run_newest_first() -> None:
    order: list[str] = []
    stack = UndoStack()
    stack.push("cordon", lambda: order.append("uncordon"))
    stack.push("scale", lambda: order.append("unscale"))
    assert stack.drain() == []
    assert order == ["unscale", "uncordon"]
    assert stack.steps == []


def test_a_failing_revert_does_not_stop_the_others() -> None:
    order: list[str] = []
    stack = UndoStack()
    stack.push("first", lambda: order.append("first"))

    def boom() -> None:
        raise RuntimeError("api down")

    stack.push("second", boom)
    stack.push("third", lambda: order.append("third"))
    errors = stack.drain()
    assert order == ["third", "first"]
    assert errors == ["second: api down"]


def test_drain_twice_does_nothing_the_second_time() -> None:
    calls: list[int] = []
    stack = UndoStack()
    stack.push("x", lambda: calls.append(1))
    stack.drain()
    stack.drain()
    assert calls == [1]


def test_revert_now_runs_one_revert_once() -> None:
    order: list[str] = []
    stack = UndoStack()
    stack.push("cordon", lambda: order.append("uncordon"))
    stack.push("stress", lambda: order.append("unstress"))
    stack.revert_now("cordon")
    assert order == ["uncordon"]
    assert stack.drain() == []
    assert order == ["uncordon", "unstress"]


def test_revert_now_of_an_unknown_fault_names_the_pending_ones() -> None:
    stack = UndoStack()
    stack.push("cordon", lambda: None)
    with pytest.raises(KeyError, match=r"no pending revert 'stress'.*cordon"):
        stack.revert_now("stress")
