"""A patched build's cache entry is keyed by its patches; an unpatched one by its version alone."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from provisioning.lab import recipes


def test_a_patched_build_is_keyed_by_its_patches(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(recipes, "CACHE_ROOT", tmp_path)
    component = recipes.components()["metallb"]
    assert component.directory.name.startswith(f"metallb-{component.version}-patched-")
    other_patch = dataclasses.replace(component, patches={"controller/main.go": [("a", "b")]})
    assert other_patch.directory != component.directory
    unpatched = dataclasses.replace(component, patches={})
    assert unpatched.directory == tmp_path / f"metallb-{component.version}"
    argocd = recipes.components()["argocd"]  # no patch: install.yaml runs it in pods, unchanged
    assert argocd.directory == tmp_path / f"argocd-{argocd.version}"
