"""One revert mechanism for every fault: a stack drained in reverse order on every exit path."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field

log = logging.getLogger(__name__)


@dataclass
class UndoStack:
    steps: list[tuple[str, Callable[[], object]]] = field(default_factory=list)
    done: list[str] = field(default_factory=list)

    def push(self, description: str, revert: Callable[[], object]) -> None:
        self.steps.append((description, revert))

    def revert_now(self, description: str) -> None:
        """Run the revert pushed as ``description`` now (the scenario's own "remove the fault" step);
        it is no longer run at the end. A failure propagates: the step fails."""
        for index in range(len(self.steps) - 1, -1, -1):
            if self.steps[index][0] == description:
                _, revert = self.steps.pop(index)
                revert()
                self.done.append(description)
                log.info("reverted: %s", description)
                return
        raise KeyError(f"no pending revert {description!r} (pending: {[d for d, _ in self.steps]})")

    def drain(self) -> list[str]:
        """Run every revert, newest first. Failures are collected, never stop the other reverts."""
        errors = []
        while self.steps:
            description, revert = self.steps.pop()
            try:
                revert()
                self.done.append(description)
                log.info("reverted: %s", description)
            except Exception as exc:
                errors.append(f"{description}: {exc}")
                log.error("revert failed: %s: %s", description, exc)
        return errors
