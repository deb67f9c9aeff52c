"""One revert mechanism for every fault: a stack drained in reverse order on every exit path.

A revert pushed with ``journal=(kind, args)`` is also written to the run's journal on the target
before the fault is injected (boutique_suite.actions.journal), and struck from it once it ran: a process
killed mid-fault leaves it there for the next run to replay (boutique_suite.actions.reverts).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

log = logging.getLogger(__name__)


class Journal(Protocol):
    def record(self, description: str, kind: str, args: dict[str, Any]) -> str: ...
    def resolve(self, key: str) -> None: ...


@dataclass
class Step:
    description: str
    revert: Callable[[], object]
    journal_key: str | None = None


@dataclass
class UndoStack:
    """``journal`` gives the run's journal when a journaled revert is first pushed (it is opened on
    the target lazily, so scenarios that inject nothing never touch the cluster for it)."""

    journal: Callable[[], Journal] | None = None
    steps: list[Step] = field(default_factory=list)
    done: list[str] = field(default_factory=list)

    def push(
        self,
        description: str,
        revert: Callable[[], object],
        journal: tuple[str, dict[str, Any]] | None = None,
    ) -> None:
        key = None
        if journal and self.journal:
            key = self.journal().record(description, *journal)
        self.steps.append(Step(description, revert, key))

    def revert_now(self, description: str) -> None:
        """Run the revert pushed as ``description`` now (the scenario's own "remove the fault" step);
        it is no longer run at the end. A failure propagates: the step fails."""
        for index in range(len(self.steps) - 1, -1, -1):
            if self.steps[index].description == description:
                self._run(self.steps.pop(index))
                return
        pending = [step.description for step in self.steps]
        raise KeyError(f"no pending revert {description!r} (pending: {pending})")

    def drain(self) -> list[str]:
        """Run every revert, newest first. Failures are collected, never stop the other reverts."""
        errors = []
        while self.steps:
            step = self.steps.pop()
            try:
                self._run(step)
            except Exception as exc:
                errors.append(f"{step.description}: {exc}")
                log.error("revert failed: %s: %s", step.description, exc)
        return errors

    def _run(self, step: Step) -> None:
        step.revert()
        if step.journal_key and self.journal:
            self.journal().resolve(step.journal_key)
        self.done.append(step.description)
        log.info("reverted: %s", step.description)
