"""The lab's start (provisioning.lab.manager.up) when a component exits while the lab starts: started once
more on the same data, as a kubelet restarts a crashed static pod; dead a second time, the error stops it."""

from __future__ import annotations

import pytest

from provisioning.lab import manager


def test_a_component_that_dies_during_the_start_is_started_once_more(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    starts: list[int] = []

    def start() -> bool:
        starts.append(1)
        if len(starts) == 1:
            raise manager.ComponentsDied("components died during start: metrics-server (logs: …)")
        return True

    monkeypatch.setattr(manager, "_up", start)
    assert manager.up() is True and len(starts) == 2
    assert "metrics-server" in capsys.readouterr().err


def test_a_component_that_dies_again_stops_the_start_with_its_name(monkeypatch: pytest.MonkeyPatch) -> None:
    starts: list[int] = []

    def start() -> bool:
        starts.append(1)
        raise manager.ComponentsDied("components died during start: metrics-server (logs: …)")

    monkeypatch.setattr(manager, "_up", start)
    with pytest.raises(manager.LabError, match="metrics-server"):
        manager.up()
    assert len(starts) == 2


def test_other_start_failures_are_not_tried_again(monkeypatch: pytest.MonkeyPatch) -> None:
    starts: list[int] = []

    def start() -> bool:
        starts.append(1)
        raise manager.LabError("port 6443 is taken")

    monkeypatch.setattr(manager, "_up", start)
    with pytest.raises(manager.LabError, match="6443"):
        manager.up()
    assert len(starts) == 1
