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
