"""The Terraform module (provisioning/terraform/libvirt) with the real tofu and libvirt provider built by
./run setup, offline: fmt and validate pass, broken copies are reported by module, providers come only from
the local mirror, a plan against a scratch libvirt daemon creates exactly the nodes, and the reasons given
when something is missing name the fix."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from boutique_suite.expectations import terraform
from provisioning.lab import build, recipes

MODULE = terraform.MODULES / "libvirt"
needs_tofu = pytest.mark.usefixtures("tofu")
needs_libvirtd = pytest.mark.skipif(
    terraform.libvirt_unavailable() is not None, reason=str(terraform.libvirt_unavailable())
)


@pytest.fixture(scope="module")
def tofu() -> None:
    """OpenTofu and the libvirt provider, as the project builds them. ``./run tests`` builds them beside the
    tests, so on a cold machine this waits for that build (its lock) instead of skipping; a machine that
    cannot build them skips with the reason."""
    if terraform.unavailable() is not None:
        with contextlib.suppress(recipes.BuildError):
            build.ensure_all(["opentofu", terraform.PROVIDER])
    if why := terraform.unavailable():
        pytest.skip(why)


def copy_module(root: Path, name: str = "libvirt") -> Path:
    return Path(shutil.copytree(MODULE, root / name))


def edit(path: Path, old: str, new: str) -> None:
    text = path.read_text()
    assert text.count(old) == 1, f"{old!r} not found once in {path}"
    path.write_text(text.replace(old, new))


def test_the_repository_has_one_module() -> None:
    assert terraform.modules() == [MODULE]


@needs_tofu
def test_the_module_is_formatted_and_valid() -> None:
    terraform.expect_formatted()
    terraform.expect_valid()
    assert not (MODULE / ".terraform").exists() and not (MODULE / ".terraform.lock.hcl").exists()


@needs_tofu
def test_a_misformatted_copy_is_reported_by_module(tmp_path: Path) -> None:
    copy_module(tmp_path, "good")
    messy = copy_module(tmp_path, "messy")
    edit(messy / "main.tf", "  name      = each.key\n", "name=each.key\n")
    with pytest.raises(AssertionError, match=r"terraform fmt would change: \{'messy': \['main.tf'\]\}$"):
        terraform.expect_formatted(tmp_path)


@needs_tofu
def test_an_invalid_copy_is_reported_by_module(tmp_path: Path) -> None:
    copy_module(tmp_path, "good")
    broken = copy_module(tmp_path, "broken")
    edit(broken / "outputs.tf", "ansible_user = var.ssh_user", "ansible_user = var.ssh_usr")
    with pytest.raises(
        AssertionError, match=r"terraform validate failed: \{'broken': .*undeclared input variable"
    ):
        terraform.expect_valid(tmp_path)


@needs_tofu
def test_providers_come_from_the_local_mirror_only(tmp_path: Path) -> None:
    other = copy_module(tmp_path, "other")
    edit(
        other / "versions.tf",
        "required_providers {\n",
        'required_providers {\n    null = { source = "hashicorp/null" }\n',
    )
    with pytest.raises(AssertionError, match=r"\{'other': .*hashicorp/null"):
        terraform.expect_valid(tmp_path)


def test_the_cli_config_names_the_mirror_and_nothing_else(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setattr(terraform, "CLI_CONFIG", tmp_path / "tofu.tfrc")
    text = terraform.cli_config(tmp_path / "mirror").read_text()
    assert f'filesystem_mirror {{\n    path = "{tmp_path / "mirror"}"\n  }}' in text
    assert "direct" not in text and "network_mirror" not in text


def test_the_provider_is_laid_out_as_an_unpacked_mirror() -> None:
    links = recipes.components()[terraform.PROVIDER].links[terraform.PROVIDER]
    assert links == [
        f"mirror/{host}/dmacvicar/libvirt/0.8.3/linux_amd64/terraform-provider-libvirt_v0.8.3"
        for host in ("registry.opentofu.org", "registry.terraform.io")
    ]
    assert 'version = "0.8.3"' in (MODULE / "versions.tf").read_text()


def test_a_missing_mirror_link_is_rebuilt(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setattr(recipes, "CACHE_ROOT", tmp_path)
    provider = recipes.components()[terraform.PROVIDER]
    binary = provider.directory / "bin" / terraform.PROVIDER
    binary.parent.mkdir(parents=True)
    binary.write_bytes(b"provider")
    manifest = {"sha256": {terraform.PROVIDER: build.sha256(binary)}}
    (provider.directory / build.MANIFEST).write_text(json.dumps(manifest))
    first, second = provider.links[terraform.PROVIDER]
    assert build.verify(provider) == f"{first} missing"
    for link in (first, second):
        (provider.directory / link).parent.mkdir(parents=True)
        os.link(binary, provider.directory / link)
    assert build.verify(provider) is None


def test_reasons_name_the_fix(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    assert terraform.unavailable(tmp_path) == terraform.NO_MODULES
    copy_module(tmp_path)
    built: set[str] = set()
    on_path: dict[str, str] = {}
    monkeypatch.setattr(terraform, "_built", lambda name: tmp_path if name in built else None)
    monkeypatch.setattr(terraform.shutil, "which", on_path.get)
    reason = terraform.unavailable(tmp_path)
    assert reason == terraform.NO_BINARY.format(path=terraform.built_tofu())
    assert "no tofu or terraform is on PATH: run ./run setup" in reason
    assert terraform.libvirt_unavailable() == terraform.NO_LIBVIRTD
    on_path["terraform"] = "/usr/local/bin/terraform"
    assert terraform.binary() == "/usr/local/bin/terraform"
    assert "local mirror is not built" in str(terraform.unavailable(tmp_path))
    assert "run ./run setup" in str(terraform.unavailable(tmp_path))
    on_path["tofu"] = "/usr/local/bin/tofu"
    assert terraform.binary() == "/usr/local/bin/tofu"
    built |= {"opentofu", terraform.PROVIDER}
    assert terraform.binary() == str(terraform.built_tofu())
    assert terraform.unavailable(tmp_path) is None


@contextmanager
def no_daemon() -> Iterator[str]:
    yield "test:///default"


def test_a_plan_that_changes_more_than_the_nodes_fails(monkeypatch: pytest.MonkeyPatch) -> None:
    changes = {address: ["create"] for address in terraform.LIBVIRT_CREATES}
    changes["libvirt_network.platform"] = ["delete", "create"]
    monkeypatch.setattr(terraform, "scratch_libvirt", no_daemon)
    monkeypatch.setattr(terraform, "plan", lambda module, variables: terraform.Plan(2, changes, ""))
    with pytest.raises(
        AssertionError, match=r"unexpected \{'libvirt_network.platform': \['delete', 'create'\]\}"
    ):
        terraform.expect_plan_on_scratch_libvirt()
    monkeypatch.setattr(terraform, "plan", lambda module, variables: terraform.Plan(0, {}, "No changes."))
    with pytest.raises(AssertionError, match=r"exited 0, not 2 \(changes\): No changes.$"):
        terraform.expect_plan_on_scratch_libvirt()


def scratch_dirs() -> set[Path]:
    return set(Path(tempfile.gettempdir()).glob("boutique-libvirt-*"))


def libvirtd_pids() -> set[int]:
    pids = set()
    for comm in Path("/proc").glob("[0-9]*/comm"):
        try:
            if comm.read_text().strip() == "libvirtd":
                pids.add(int(comm.parent.name))
        except OSError:  # the process ended while we looked
            continue
    return pids


@needs_tofu
@needs_libvirtd
def test_plan_against_a_scratch_libvirt_creates_exactly_the_nodes() -> None:
    before, daemons = scratch_dirs(), libvirtd_pids()
    result = terraform.expect_plan_on_scratch_libvirt()
    assert result.exit_code == 2
    assert len(result.changes) == 11, result.changes
    assert "Plan: 11 to add, 0 to change, 0 to destroy." in result.output
    assert scratch_dirs() == before, "the scratch libvirt left its directory behind"
    assert libvirtd_pids() <= daemons, "the scratch libvirtd is still running"
    # k8s-worker1's cloud-init: its static address, and the MAC derived from it that its NIC gets
    assert "- 192.168.10.12/24" in result.output and 'macaddress: "52:54:00:a8:0a:0c"' in result.output
    assert f'- "{terraform.SCRATCH_KEY}"' in result.output


@needs_tofu
@needs_libvirtd
def test_plan_refuses_bad_variables() -> None:
    with terraform.scratch_libvirt() as uri:
        good = terraform.scratch_variables(uri)
        outside = terraform.plan(MODULE, good | {"nodes": {"k8s-master": {"address": "10.0.0.5"}}})
        bad_key = terraform.plan(MODULE, good | {"ssh_public_key": "not a key"})
    assert outside.exit_code == 1
    assert "k8s-master's address 10.0.0.5 is outside network 192.168.10.0/24." in outside.output
    assert bad_key.exit_code == 1 and "ssh_public_key must be one OpenSSH public key line" in bad_key.output
