"""The lab's start (provisioning.lab.manager.up) when a component exits while the lab starts: started once
more on the same data, as a kubelet restarts a crashed static pod; dead a second time, the error stops it."""

from __future__ import annotations

import pytest

from provisioning.lab import manager

DIED = manager.ComponentsDied("components died during start: metrics-server (logs: …)")


def starts(monkeypatch: pytest.MonkeyPatch, *outcomes: Exception | bool) -> list[int]:
    """Make manager._up give ``outcomes`` in turn (raise an exception, return a bool); the starts made."""
    made: list[int] = []

    def start() -> bool:
        outcome = outcomes[len(made)]
        made.append(1)
        if isinstance(outcome, Exception):
            raise outcome
        return outcome

    monkeypatch.setattr(manager, "_up", start)
    return made


def test_a_component_that_dies_during_the_start_is_started_once_more(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    made = starts(monkeypatch, DIED, True)
    assert manager.up() is True and len(made) == 2
    assert "metrics-server" in capsys.readouterr().err


def test_a_component_that_dies_again_stops_the_start_with_its_name(monkeypatch: pytest.MonkeyPatch) -> None:
    made = starts(monkeypatch, DIED, DIED)
    with pytest.raises(manager.LabError, match="metrics-server"):
        manager.up()
    assert len(made) == 2


def test_other_start_failures_are_not_tried_again(monkeypatch: pytest.MonkeyPatch) -> None:
    made = starts(monkeypatch, manager.LabError("port 6443 is taken"))
    with pytest.raises(manager.LabError, match="6443"):
        manager.up()
    assert len(made) == 1
