"""Setup a person can follow: the components a phase needs, and the lab build's progress lines."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from provisioning.lab import build


def test_phase3_builds_what_layers_0_to_3_run_and_not_terraform_or_monitoring() -> None:
    assert set(build.FIRST_LAYER) == set(build.components())
    phase3 = build.through_layer(3)
    assert {"kubernetes", "kubernetes-node", "etcd", "argocd", "metallb", "distribution"} <= set(phase3)
    assert not {"opentofu", "terraform-provider-libvirt", "kube-state-metrics", "sealed-secrets"} & set(
        phase3
    )
    assert build.through_layer(7) == list(build.components())


def test_a_long_build_command_says_every_heartbeat_that_it_is_still_working(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(build, "HEARTBEAT_SECONDS", 0.1)
    build._run(
        ["sleep", "0.45"], tmp_path, {"PATH": "/usr/bin:/bin"}, tmp_path / "log", lambda: "still going"
    )
    assert capsys.readouterr().err.count("still going") >= 3
    assert (tmp_path / "log").read_text().startswith("$ sleep 0.45")


def test_each_build_is_numbered_and_estimated_from_the_last_builds_here(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(build, "CACHE_ROOT", tmp_path)
    (tmp_path / build.BUILD_SECONDS).write_text(json.dumps({"etcd": 62.0, "kwok": 107.0}))
    built: list[tuple[str, str]] = []

    def fake_build(component: build.Component, force: bool = False, step: str = "") -> Path:
        built.append((component.name, step))
        return tmp_path

    monkeypatch.setattr(build, "build", fake_build)
    build.ensure_all(["etcd", "kwok"])
    assert built == [("etcd", "[1/2] "), ("kwok", "[2/2] ")]
    assert (
        "building 2 of 2 components: etcd, kwok (about 2m49s by the last builds here)"
        in capsys.readouterr().err
    )


def test_a_build_time_is_remembered_for_the_next_estimate(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(build, "CACHE_ROOT", tmp_path)
    assert build.last_build_seconds() == {}
    build._remember_build_seconds(build.components()["etcd"], 61.96)
    assert build.last_build_seconds() == {"etcd": 62.0}
    (tmp_path / build.BUILD_SECONDS).write_text("not json")
    assert build.last_build_seconds() == {}
