"""Setup a person can follow: the components a phase needs, and the lab build's progress lines."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from provisioning.lab import build, recipes


def test_phase3_builds_what_layers_0_to_3_run_and_not_terraform_or_monitoring() -> None:
    assert set(recipes.FIRST_LAYER) == set(recipes.components())
    phase3 = build.through_layer(3)
    assert {"kubernetes", "kubernetes-node", "etcd", "argocd", "metallb", "distribution"} <= set(phase3)
    assert not {"opentofu", "terraform-provider-libvirt", "kube-state-metrics", "sealed-secrets"} & set(
        phase3
    )
    assert build.through_layer(7) == list(recipes.components())


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
    monkeypatch.setattr(recipes, "CACHE_ROOT", tmp_path)
    (tmp_path / build.BUILD_SECONDS).write_text(json.dumps({"etcd": 62.0, "kwok": 107.0}))
    built: list[tuple[str, str]] = []

    def fake_build(component: recipes.Component, force: bool = False, step: str = "") -> Path:
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
    monkeypatch.setattr(recipes, "CACHE_ROOT", tmp_path)
    assert build.last_build_seconds() == {}
    build._remember_build_seconds(recipes.components()["etcd"], 61.96)
    assert build.last_build_seconds() == {"etcd": 62.0}
    (tmp_path / build.BUILD_SECONDS).write_text("not json")
    assert build.last_build_seconds() == {}


def test_a_component_being_built_elsewhere_is_waited_for_and_another_is_not(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Setup builds the later layers beside the tests: a test wanting the component another process is
    building waits for it and then uses it (no second build); one wanting another component goes on."""
    monkeypatch.setattr(recipes, "CACHE_ROOT", tmp_path)
    finished = tmp_path / "opentofu-finished"
    other_builder = subprocess.Popen(
        [sys.executable, "-c", HOLD_THE_LOCK, build.__file__, str(finished)],
        env={**os.environ, "BOUTIQUE_LAB_CACHE": str(tmp_path)},
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert other_builder.stdout and other_builder.stdout.readline().strip() == "building opentofu"
        built: list[str] = []
        done = {"opentofu": finished.exists, "etcd": lambda: "etcd" in built}
        monkeypatch.setattr(build, "verify", lambda c: None if done[c.name]() else "not built")
        monkeypatch.setattr(build, "build", lambda c, force=False, step="": built.append(c.name) or tmp_path)
        started = time.monotonic()
        build.ensure_all(["etcd"])
        assert built == ["etcd"] and time.monotonic() - started < 1.0, "not held up by opentofu's build"
        build.ensure_all(["opentofu"])
        assert finished.exists(), "it must wait while opentofu is being built"
        assert built == ["etcd"], "found built once the lock was free: not built twice"
    finally:
        other_builder.kill()
        other_builder.wait(timeout=10)


HOLD_THE_LOCK = """
import importlib.util, pathlib, sys, time
spec = importlib.util.spec_from_file_location("build", sys.argv[1])
build = sys.modules["build"] = importlib.util.module_from_spec(spec)
spec.loader.exec_module(build)
with build.build_lock("opentofu"):
    print("building opentofu", flush=True)
    time.sleep(1.5)
    pathlib.Path(sys.argv[2]).touch()
"""


def test_the_later_layers_are_built_in_the_order_the_layers_need_them(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    asked: list[list[str]] = []
    monkeypatch.setattr(build, "ensure_all", lambda names, force=False: asked.append(names) or {})
    assert build.main(["--after", "3"]) == 0
    later = ["buildkit", "crane", "kube-state-metrics", "sealed-secrets"]
    later += ["opentofu", "terraform-provider-libvirt"]
    assert asked == [later]
    assert set(asked[0]).isdisjoint(build.through_layer(3))
