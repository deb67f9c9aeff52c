"""How the lab's pipeline builds images for real, without the lab: buildkitd's configuration (the mirror for
every upstream registry, over TLS with the platform CA only), the Dockerfile's base images being the ones the
lab makes and mirrors, and app-repo's frontend made buildable from the stand-in's source."""

from __future__ import annotations

import re
import shutil
import subprocess
import tomllib
from pathlib import Path

import pytest
import yaml

from boutique_suite.expectations import cicd
from provisioning.lab import recipes
from provisioning.lab.services import app_repo, buildkit, registry, upstream_images

STANDIN_DOCKERFILE = app_repo.STANDIN / "Dockerfile"


def mirror(tmp_path: Path) -> registry.Registry:
    return registry.Registry("10.66.0.1", 28500, tmp_path / "ca.crt", tmp_path, None, tmp_path / "log")


def test_buildkitd_pulls_upstream_names_from_the_mirror_trusting_only_the_platform_ca(tmp_path: Path) -> None:
    config = tomllib.loads(buildkit.config_toml(tmp_path, mirror(tmp_path)))
    assert config["root"] == str(tmp_path / "root")
    assert config["grpc"]["address"] == [buildkit.address(tmp_path)]
    assert config["worker"]["oci"]["enabled"] and not config["worker"]["containerd"]["enabled"]
    for upstream in registry.MIRRORED_UPSTREAMS:
        assert config["registry"][upstream]["mirrors"] == ["10.66.0.1:28500"], upstream
    assert config["registry"]["10.66.0.1:28500"] == {"http": False, "ca": [str(tmp_path / "ca.crt")]}
    assert "docker.io" in registry.MIRRORED_UPSTREAMS and "gcr.io" in registry.MIRRORED_UPSTREAMS


def test_the_stand_in_dockerfile_starts_from_the_base_images_the_lab_mirrors() -> None:
    bases = re.findall(r"^FROM (\S+)", STANDIN_DOCKERFILE.read_text(), re.MULTILINE)
    qualified = {b if "/" in b and "." in b.split("/")[0] else f"docker.io/library/{b}" for b in bases}
    assert qualified == set(upstream_images.BUILD_BASE_IMAGES)
    for reference in upstream_images.BUILD_BASE_IMAGES:
        upstream_images.recipe_for(reference)  # a recipe makes it
        assert upstream_images.split(reference)[0] in registry.MIRRORED_UPSTREAMS


@pytest.fixture(scope="module")
def content() -> Path:
    return app_repo.content()


def test_app_repos_frontend_is_the_stand_ins_source_vendored_with_its_dockerfile(content: Path) -> None:
    frontend = content / "src" / app_repo.BUILT_FROM_SOURCE
    assert (frontend / "Dockerfile").read_text() == STANDIN_DOCKERFILE.read_text()
    for source in app_repo.STANDIN.glob("*.go"):
        assert (frontend / source.name).read_bytes() == source.read_bytes()
    modules = (frontend / "vendor" / "modules.txt").read_text()
    assert "# google.golang.org/grpc " in modules
    others = content / "src" / "cartservice" / "Dockerfile"
    assert others.read_text() == (app_repo.SOURCE / "src" / "cartservice" / "Dockerfile").read_text()
    assert (content / ".gitlab-ci.yml").read_text() == (app_repo.SOURCE / ".gitlab-ci.yml").read_text()


def test_the_lab_app_repos_dockerfiles_keep_app_repos_rules_the_stand_ins_too(content: Path) -> None:
    cicd.expect_dockerfile_rule(content, "multi-stage", "pinned", "lean final stage", "non-root")
    syntax = re.search(r"^# *syntax=", STANDIN_DOCKERFILE.read_text(), re.MULTILINE)
    assert syntax is None, "a syntax directive pulls a frontend image, which the lab cannot"


def test_the_same_sources_give_the_same_app_repo_tree(content: Path) -> None:
    assert app_repo.content() == content
    assert content.name == app_repo.digest()


def test_base_image_recipes_key_their_cache_by_variant_and_toolchain() -> None:
    golang, distroless = (upstream_images.recipe_for(r) for r in upstream_images.BUILD_BASE_IMAGES)
    assert distroless.variant == "extract" and golang.variant == "minbase"
    keyed = upstream_images.cache_key(distroless, "nonroot", {})
    other = upstream_images.cache_key(
        upstream_images.Recipe(**{**distroless.__dict__, "variant": "minbase"}), "nonroot", {}
    )
    assert keyed != other


# --- the build and push scripts, with recording stand-ins for buildctl and crane ------------------------

RECORDER = """#!/bin/sh
echo "$(basename "$0") $* DOCKER_CONFIG=${DOCKER_CONFIG:-}" >> "$RECORD"
case "$1 $2" in "auth login") cat > "$DOCKER_CONFIG/login" ;; esac
case "$1" in digest) echo sha256:0 ;; esac
"""


def scripts_run(
    tmp_path: Path, script: str, env: dict[str, str]
) -> tuple[subprocess.CompletedProcess[str], str]:
    tools = tmp_path / "tools"
    tools.mkdir(exist_ok=True)
    for name in ("buildctl", "buildctl-daemonless.sh", "crane"):
        (tools / name).write_text(RECORDER)
        (tools / name).chmod(0o755)
    work = tmp_path / "app"
    shutil.copytree(app_repo.SOURCE / "ci", work / "ci", dirs_exist_ok=True)
    (work / "src" / "frontend").mkdir(parents=True, exist_ok=True)
    (work / "src" / "frontend" / "Dockerfile").write_text("FROM scratch\n")
    (work / "images").mkdir(exist_ok=True)
    (work / "images" / "frontend.tar").write_text("")
    (work / "ca.crt").write_text("")
    record = tmp_path / "record"
    base = {"PATH": f"{tools}:/usr/bin:/bin", "HOME": str(tmp_path / "home"), "RECORD": str(record)}
    base |= {"IMAGE_TAG": "0123abcd", "SERVICES": "frontend", "IMAGE_PREFIX": "registry.local/boutique"}
    proc = subprocess.run(
        ["sh", f"ci/{script}"], cwd=work, env=base | env, capture_output=True, text=True, timeout=60
    )
    return proc, record.read_text() if record.exists() else ""


def test_the_build_job_uses_the_runners_buildkitd_when_given_and_gzips_every_layer(tmp_path: Path) -> None:
    proc, record = scripts_run(tmp_path, "build-images.sh", {"BUILDKIT_HOST": "unix:///run/bk.sock"})
    assert proc.returncode == 0, proc.stderr
    assert record.startswith("buildctl build --frontend dockerfile.v0 --local context=src/frontend")
    assert "dest=images/frontend.tar,compression=gzip,force-compression=true" in record
    proc, record = scripts_run(tmp_path, "build-images.sh", {"REGISTRY_CA_FILE": "/ca.crt"})
    assert proc.returncode == 0, proc.stderr
    assert record.splitlines()[-1].startswith("buildctl-daemonless.sh build ")


def test_the_push_job_dials_the_registry_address_and_keeps_its_login_to_itself(tmp_path: Path) -> None:
    env = {
        "REGISTRY_USER": "ci",
        "REGISTRY_PASSWORD": "s3cret",
        "REGISTRY_CA_FILE": str(tmp_path / "app/ca.crt"),
    }
    proc, record = scripts_run(tmp_path, "push-images.sh", env | {"REGISTRY_ADDRESS": "10.0.0.1:28501"})
    assert proc.returncode == 0, proc.stderr
    login, push = record.splitlines()[:2]
    assert login.startswith("crane auth login 10.0.0.1:28501 -u ci --password-stdin")
    assert push.startswith("crane push images/frontend.tar 10.0.0.1:28501/boutique/frontend:0123abcd")
    config = login.rpartition("DOCKER_CONFIG=")[2]
    assert config and not Path(config).exists(), "the job's login is removed with the job"
    assert not (tmp_path / "home" / ".docker").exists()
    assert "s3cret" not in proc.stdout + proc.stderr + record
    proc, record = scripts_run(tmp_path, "push-images.sh", env)
    assert "crane push images/frontend.tar registry.local/boutique/frontend:0123abcd" in record


def test_the_lab_builds_buildkit_and_crane_at_the_versions_app_repos_jobs_pin() -> None:
    variables = yaml.safe_load((app_repo.SOURCE / ".gitlab-ci.yml").read_text())["variables"]
    versions = recipes.load_versions()
    assert (
        variables["BUILDKIT_IMAGE"] == f"docker.io/moby/buildkit:{versions['buildkit']['version']}-rootless"
    )
    assert variables["CRANE_IMAGE"].endswith(f"/crane/debug:{versions['crane']['version']}")
