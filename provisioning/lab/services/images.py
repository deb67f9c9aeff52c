"""The stand-in service's binary and its container images, without a container engine or a registry.

``build_standin()`` builds ``standin/`` (a local Go module, dependencies pinned in its go.sum) into
``~/.cache/boutique-lab/standin-<source hash>/bin/standin``; a change to the source gives a new hash
and so a new build. ``image_archive()`` writes a docker-archive tar (what ``docker save`` writes,
importable with ``ctr -n k8s.io images import``) in which every tag is the same single layer
(``/standin``, ``/etc/passwd``) with its role baked in as ``SERVICE=<role>``.

Usage: ``python -m provisioning.lab.services.images [--tag TAG] [--force]`` prints the archive's path.
"""

from __future__ import annotations

import argparse
import fcntl
import hashlib
import io
import json
import os
import platform
import shutil
import sys
import tarfile
import tempfile
import time
from pathlib import Path

from provisioning.lab import build, recipes

STANDIN_SOURCE = Path(__file__).resolve().parents[1] / "standin"
BOUTIQUE_REPOSITORY = "registry.local/boutique"
PAUSE_IMAGE = "registry.k8s.io/pause:3.10"  # kubeadm's name, served by the lab's mirror
BOUTIQUE_SERVICES = (
    "adservice",
    "cartservice",
    "checkoutservice",
    "currencyservice",
    "emailservice",
    "frontend",
    "loadgenerator",
    "paymentservice",
    "productcatalogservice",
    "recommendationservice",
    "redis-cart",
    "shippingservice",
)
IMAGE_USER = "1000:1000"
PASSWD = (
    "root:x:0:0:root:/root:/sbin/nologin\n"
    "standin:x:1000:1000:Online Boutique stand-in:/:/sbin/nologin\n"
    "nobody:x:65534:65534:nobody:/nonexistent:/sbin/nologin\n"
)
FIXED_MTIME = 1704067200  # 2024-01-01: same inputs, same bytes, same digests
CREATED = "2024-01-01T00:00:00Z"
GO_ARCH = {"x86_64": "amd64", "amd64": "amd64", "aarch64": "arm64", "arm64": "arm64"}


def source_hash(source: Path = STANDIN_SOURCE) -> str:
    """A digest of the module's go.mod, go.sum and Go files (paths and contents)."""
    digest = hashlib.sha256()
    files = sorted(p for p in source.rglob("*") if p.is_file() and p.name in ("go.mod", "go.sum"))
    files += sorted(p for p in source.rglob("*.go") if p.is_file())
    for path in files:
        digest.update(path.relative_to(source).as_posix().encode() + b"\0")
        digest.update(path.read_bytes() + b"\0")
    return digest.hexdigest()[:16]


def standin_dir() -> Path:
    return recipes.CACHE_ROOT / f"standin-{source_hash()}"


def standin_binary() -> Path:
    """Where ``build_standin()`` puts the binary (it may not be built yet)."""
    return standin_dir() / "bin" / "standin"


def _cached_binary_problem(directory: Path) -> str | None:
    manifest = directory / build.MANIFEST
    binary = directory / "bin" / "standin"
    if not manifest.exists() or not binary.exists():
        return "not built"
    try:
        expected = json.loads(manifest.read_text())["sha256"]["standin"]
    except (ValueError, KeyError):
        return "manifest unreadable"
    return None if expected == build.sha256(binary) else "standin corrupt (sha256 mismatch)"


def build_standin(force: bool = False) -> Path:
    """Build the stand-in (static, CGO_ENABLED=0) unless an intact cache entry exists; its path."""
    directory = standin_dir()
    if not force and _cached_binary_problem(directory) is None:
        return directory / "bin" / "standin"
    if shutil.which("go") is None:
        raise recipes.BuildError("the Go toolchain is missing: install Go >= 1.26 and put `go` on PATH")
    recipes.CACHE_ROOT.mkdir(parents=True, exist_ok=True)
    with (recipes.CACHE_ROOT / ".standin.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        problem = _cached_binary_problem(directory)
        if problem is None and not force:
            return directory / "bin" / "standin"
        return _build_into(directory, problem or "forced")


def _build_into(directory: Path, reason: str) -> Path:
    for stale in recipes.CACHE_ROOT.glob(".standin-build-*"):
        shutil.rmtree(stale, ignore_errors=True)
    work = Path(tempfile.mkdtemp(prefix=".standin-build-", dir=recipes.CACHE_ROOT))
    log = recipes.CACHE_ROOT / f"build-{directory.name}.log"
    log.write_text("")
    print(f"building the stand-in ({reason}); log: {log}", file=sys.stderr)
    started = time.monotonic()
    env = {**build._go_env(), "GOFLAGS": "-mod=readonly -buildvcs=false", "CGO_ENABLED": "0"}
    try:
        out = work / "bin" / "standin"
        cmd = ["go", "build", "-trimpath", "-ldflags", "-s -w", "-o", str(out), "."]
        build._run(cmd, STANDIN_SOURCE, env, log, lambda: f"  ... the stand-in still building, {reason}")
        manifest = {
            "component": "standin",
            "version": directory.name.removeprefix("standin-"),
            "built_seconds": round(time.monotonic() - started, 1),
            "sha256": {"standin": build.sha256(out)},
        }
        (work / build.MANIFEST).write_text(json.dumps(manifest, indent=2))
        if directory.exists():
            shutil.rmtree(directory)
        work.rename(directory)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    prune_stale_builds()
    print(f"built the stand-in in {time.monotonic() - started:.0f}s", file=sys.stderr)
    return directory / "bin" / "standin"


def prune_stale_builds(keep: int = 3) -> None:
    """Remove all but the ``keep`` newest stand-in builds, and image archives of removed builds (other
    checkouts of the source keep theirs unless more than ``keep`` versions were built since)."""
    builds = sorted(recipes.CACHE_ROOT.glob("standin-*"), key=lambda p: p.stat().st_mtime, reverse=True)
    kept_sums = set()
    for directory in builds[:keep]:
        try:
            kept_sums.add(json.loads((directory / build.MANIFEST).read_text())["sha256"]["standin"][:12])
        except (OSError, ValueError, KeyError):
            continue
    for directory in builds[keep:]:
        shutil.rmtree(directory, ignore_errors=True)
    for archive in (recipes.CACHE_ROOT / "images").glob("standin-*.tar"):
        if archive.name.split("-")[1] not in kept_sums:
            archive.unlink(missing_ok=True)


def boutique_tags(tag: str) -> dict[str, str]:
    """Every Boutique image ``registry.local/boutique/<service>:<tag>`` and the pause image, each
    mapped to the role it plays."""
    tags = {f"{BOUTIQUE_REPOSITORY}/{service}:{tag}": service for service in BOUTIQUE_SERVICES}
    tags[PAUSE_IMAGE] = "pause"
    return tags


def _tar_entry(archive: tarfile.TarFile, name: str, data: bytes | None, mode: int) -> None:
    info = tarfile.TarInfo(name)
    info.mtime = FIXED_MTIME
    info.mode = mode
    info.uname = info.gname = "root"
    if data is None:
        info.type = tarfile.DIRTYPE
        archive.addfile(info)
    else:
        info.size = len(data)
        archive.addfile(info, io.BytesIO(data))


def layer_tar(binary: Path) -> bytes:
    """The image's only layer: ``/standin`` and ``/etc/passwd`` (uid 1000 ``standin``)."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.PAX_FORMAT) as layer:
        _tar_entry(layer, "etc", None, 0o755)
        _tar_entry(layer, "etc/passwd", PASSWD.encode(), 0o644)
        _tar_entry(layer, "standin", binary.read_bytes(), 0o755)
    return buffer.getvalue()


def image_config(service: str, layer_digest: str) -> bytes:
    config = {
        "architecture": GO_ARCH.get(platform.machine(), platform.machine()),
        "os": "linux",
        "created": CREATED,
        "config": {
            "User": IMAGE_USER,
            "Entrypoint": ["/standin"],
            "Env": ["PATH=/", f"SERVICE={service}"],
            "WorkingDir": "/",
            "Labels": {"org.opencontainers.image.title": f"Online Boutique stand-in: {service}"},
        },
        "rootfs": {"type": "layers", "diff_ids": [layer_digest]},
        "history": [
            {"created": CREATED, "created_by": f"provisioning/lab/services/images.py (SERVICE={service})"}
        ],
    }
    return json.dumps(config, sort_keys=True, separators=(",", ":")).encode()


def image_archive(tags_to_service: dict[str, str], out: Path, binary: Path | None = None) -> Path:
    """Write a docker-archive tar to ``out``: one image per tag (``SERVICE`` = its role), all sharing
    one layer holding ``binary`` (default: the built stand-in). Written atomically; returns ``out``."""
    layer = layer_tar(binary or build_standin())
    layer_hex = hashlib.sha256(layer).hexdigest()
    layer_path = f"{layer_hex}/layer.tar"
    files: dict[str, bytes] = {layer_path: layer}
    manifest = []
    for tag, service in sorted(tags_to_service.items()):
        config = image_config(service, f"sha256:{layer_hex}")
        config_path = f"{hashlib.sha256(config).hexdigest()}.json"
        files[config_path] = config
        manifest.append({"Config": config_path, "RepoTags": [tag], "Layers": [layer_path]})
    files["manifest.json"] = json.dumps(manifest, indent=2).encode()
    out.parent.mkdir(parents=True, exist_ok=True)
    partial = out.with_name(f".{out.name}.{os.getpid()}.partial")
    with tarfile.open(partial, "w", format=tarfile.PAX_FORMAT) as archive:
        _tar_entry(archive, layer_hex, None, 0o755)
        for name, data in files.items():
            _tar_entry(archive, name, data, 0o644)
    partial.replace(out)
    return out


def ensure_image_archive(tag: str = "lab", force: bool = False) -> Path:
    """The archive of every Boutique stand-in image tagged ``tag`` plus the pause image, cached under
    ``~/.cache/boutique-lab/images/`` by binary and tags (built when missing)."""
    binary = build_standin()
    tags = boutique_tags(tag)
    binary_sum = json.loads((binary.parent.parent / build.MANIFEST).read_text())["sha256"]["standin"]
    tags_sum = hashlib.sha256(json.dumps(tags, sort_keys=True).encode()).hexdigest()
    out = recipes.CACHE_ROOT / "images" / f"standin-{binary_sum[:12]}-{tags_sum[:12]}.tar"
    if out.exists() and not force:
        return out
    return image_archive(tags, out, binary)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tag", default="lab", help="tag of the registry.local/boutique/* images")
    parser.add_argument("--force", action="store_true", help="rebuild the archive")
    args = parser.parse_args(argv)
    try:
        print(ensure_image_archive(args.tag, force=args.force))
    except recipes.BuildError as exc:
        print(f"stand-in images: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
