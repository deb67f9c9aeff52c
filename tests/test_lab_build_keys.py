"""A patched build's cache entry is keyed by its patches, and the lab's Argo CD runs the current build."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from provisioning.lab import argocd, build


def test_a_patched_build_is_keyed_by_its_patches(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(build, "CACHE_ROOT", tmp_path)
    component = build.components()["argocd"]
    assert component.directory.name.startswith(f"argocd-{component.version}-patched-")
    other_patch = dataclasses.replace(component, patches={"controller/appcontroller.go": [("a", "b")]})
    assert other_patch.directory != component.directory
    unpatched = dataclasses.replace(component, patches={})
    assert unpatched.directory == tmp_path / f"argocd-{component.version}"


def test_the_controllers_metrics_patch_binds_loopback() -> None:
    (edit,) = build.components()["argocd"].patches["controller/appcontroller.go"]
    assert "0.0.0.0" in edit[0] and "127.0.0.1" in edit[1]
    assert build.patched_source(f"x\n\t{edit[0]}\n", [edit], "test") == f"x\n\t{edit[1]}\n"


def test_argocd_links_follow_a_new_build(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    old, new = tmp_path / "old" / "argocd", tmp_path / "new" / "argocd"
    monkeypatch.setattr(argocd, "HOME", tmp_path / "home")
    monkeypatch.setattr(argocd.build, "bin_dir", lambda name: new.parent)
    link = tmp_path / "home" / "bin" / "argocd-server"
    link.parent.mkdir(parents=True)
    link.symlink_to(old)
    assert argocd._argv("argocd-server")[0] == str(link)
    assert link.readlink() == new
    argocd._argv("argocd-server")  # a second look changes nothing
    assert link.readlink() == new
