"""The images Argo CD's pinned ``install.yaml`` names, built here and served by the lab's registry under
their upstream names, the way an air-gapped site fills its mirror: the nodes' containerd resolves quay.io,
and public.ecr.aws to the lab's registry (``registry.MIRRORED_UPSTREAMS``), so the manifest deploys
unchanged.

Each image is one layer: a Debian root filesystem made with mmdebstrap from the packages the upstream
Dockerfile installs, with what the project builds from the Go module proxy copied in by mmdebstrap's
customize hooks. The layer is cached under ``~/.cache/boutique-lab/images/``, keyed by everything that goes
into it (suite, packages, hooks, the bytes of every file copied in), so a new pin makes a new image.

Where the image differs from upstream's, ``differs`` says how, and the report shows it:
- ``quay.io/argoproj/argocd``: Debian bookworm instead of Ubuntu; no helm (not built here yet: Helm sources
  are not rendered by the lab), kustomize at the lab's pin instead of the one Argo CD bundles.
- ``public.ecr.aws/docker/library/redis``: Debian's redis-server (7.0) under the tag install.yaml names
  (8.2 on Alpine): redis's own sources are not reachable here.
- ``ghcr.io/dexidp/dex``: not made. The version install.yaml pins is not served by the Go module proxy, so
  the lab has no SSO and leaves install.yaml's argocd-dex-server out (``argocd.dex: false`` in its target).
"""

from __future__ import annotations

import hashlib
import shlex
import subprocess
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from provisioning.lab import build, recipes
from provisioning.lab.machines import machines
from provisioning.lab.services import go_toolchain, oci, registry

CACHE = recipes.CACHE_ROOT / "images"
GOLANG_VERSION = recipes.load_versions()["golang-image"]["version"]
PATH_ENV = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
ARGOCD_UID = 999
ARGOCD_LINKS = (
    "argocd-server",
    "argocd-repo-server",
    "argocd-cmp-server",
    "argocd-application-controller",
    "argocd-dex",
    "argocd-notifications",
    "argocd-applicationset-controller",
    "argocd-k8s-auth",
    "argocd-commit-server",
)
NO_DOCS = ("--dpkgopt=path-exclude=/usr/share/doc/*", "--dpkgopt=path-exclude=/usr/share/man/*")
REDIS_ENTRYPOINT = """#!/bin/sh
# redis's official entrypoint, in short: arguments that start with '-' are redis-server's
set -e
case "$1" in -*) set -- redis-server "$@" ;; esac
exec "$@"
"""


DISTROLESS_PASSWD = """root:x:0:0:root:/root:/sbin/nologin
nobody:x:65534:65534:nobody:/nonexistent:/sbin/nologin
nonroot:x:65532:65532:nonroot:/home/nonroot:/sbin/nologin
"""
DISTROLESS_GROUP = "root:x:0:\nnobody:x:65534:\nnonroot:x:65532:\n"


class UpstreamImageError(RuntimeError):
    """An image could not be built or pushed; the message names it and why."""


@dataclass(frozen=True)
class Recipe:
    """How one upstream image is made here."""

    repository: str  # e.g. quay.io/argoproj/argocd
    packages: tuple[str, ...]  # Debian packages of its root filesystem
    settings: dict[str, object]  # the image config's run settings (Entrypoint, User, Env, ...)
    differs: str  # how this image differs from upstream's, for the report
    files: Callable[[], dict[str, Path]] = field(default=lambda: {}, compare=False)  # image path: host file
    hooks: tuple[str, ...] = ()  # shell commands run by mmdebstrap with "$1" the root filesystem
    # image path: host directory copied in whole, named by a versioned path (the cache key takes the path)
    trees: Callable[[], dict[str, Path]] = field(default=lambda: {}, compare=False)
    variant: str = "minbase"  # mmdebstrap's: "extract" unpacks the packages only (no shell, no dpkg run)


def _argocd_files() -> dict[str, Path]:
    from provisioning import argocd_bootstrap
    from provisioning.gitops.checks import schema

    source = schema.module_dir(argocd_bootstrap.MODULE, argocd_bootstrap.version())
    return {
        "/usr/local/bin/argocd": build.ensure_all(["argocd"])["argocd"] / "argocd",
        "/usr/local/bin/kustomize": build.ensure_all(["kustomize"])["kustomize"] / "kustomize",
        "/usr/local/bin/gpg-wrapper.sh": source / "hack" / "gpg-wrapper.sh",
        "/usr/local/bin/git-verify-wrapper.sh": source / "hack" / "git-verify-wrapper.sh",
        "/usr/local/bin/entrypoint.sh": source / "entrypoint.sh",
    }


ARGOCD = Recipe(
    "quay.io/argoproj/argocd",
    # the packages of Argo CD's Dockerfile (argocd-base), with what git recommends there
    (
        "git",
        "git-lfs",
        "tini",
        "gpg",
        "gpg-agent",
        "tzdata",
        "connect-proxy",
        "openssh-client",
        "ca-certificates",
    ),
    {
        "Entrypoint": ["/usr/bin/tini", "--"],
        "User": str(ARGOCD_UID),
        "WorkingDir": "/home/argocd",
        "Env": [PATH_ENV, f"ARGOCD_USER_ID={ARGOCD_UID}", "DEBIAN_FRONTEND=noninteractive", "USER=argocd"],
    },
    "Debian bookworm instead of Ubuntu; kustomize at the lab's pin; no helm",
    _argocd_files,
    (
        f'chroot "$1" groupadd -g {ARGOCD_UID} argocd',
        f'chroot "$1" useradd -r -u {ARGOCD_UID} -g argocd argocd',
        f'mkdir -p "$1/home/argocd" && chown {ARGOCD_UID}:0 "$1/home/argocd" && chmod g=u "$1/home/argocd"',
        'ln -s /usr/local/bin/entrypoint.sh "$1/usr/local/bin/uid_entrypoint.sh"',
        'mkdir -p "$1/app/config/ssh" && touch "$1/app/config/ssh/ssh_known_hosts"'
        ' && ln -sf /app/config/ssh/ssh_known_hosts "$1/etc/ssh/ssh_known_hosts"',
        'mkdir -p "$1/app/config/tls" "$1/app/config/gpg/source" "$1/app/config/gpg/keys"'
        f' && chown {ARGOCD_UID} "$1/app/config/gpg/keys" && chmod 0700 "$1/app/config/gpg/keys"',
        'chroot "$1" git lfs install --system',
        *(f'ln -s /usr/local/bin/argocd "$1/usr/local/bin/{name}"' for name in ARGOCD_LINKS),
    ),
)
REDIS = Recipe(
    "public.ecr.aws/docker/library/redis",
    ("redis-server",),
    {
        "Entrypoint": ["docker-entrypoint.sh"],
        "Cmd": ["redis-server"],
        "WorkingDir": "/data",
        "Env": [PATH_ENV],
        "ExposedPorts": {"6379/tcp": {}},
    },
    "Debian bookworm's redis-server 7.0 under the tag install.yaml names (redis's sources are not reachable)",
    hooks=(
        f'printf %s {shlex.quote(REDIS_ENTRYPOINT)} > "$1/usr/local/bin/docker-entrypoint.sh"'
        ' && chmod 0755 "$1/usr/local/bin/docker-entrypoint.sh"',
        'mkdir -p "$1/data" && chmod 0777 "$1/data"',
    ),
)
GOLANG = Recipe(
    "docker.io/library/golang",
    # buildpack-deps:bookworm-scm's tools a Go build uses, and the C toolchain golang's Dockerfile adds
    ("ca-certificates", "netbase", "git", "openssh-client", "gcc", "libc6-dev", "make", "pkg-config"),
    {
        "Env": [
            "PATH=/go/bin:/usr/local/go/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
            "GOPATH=/go",
            "GOTOOLCHAIN=local",
        ],
        "WorkingDir": "/go",
    },
    "Debian bookworm with the Go toolchain the module proxy serves (golang.org/toolchain, what GOTOOLCHAIN"
    " downloads) at the tag's version; no g++, curl, wget, mercurial or subversion",
    hooks=(
        'chmod -R u+w,a+rX "$1/usr/local/go"',  # the module cache's copy is read-only, its modes lost
        'chmod 0755 "$1"/usr/local/go/bin/* "$1"/usr/local/go/pkg/tool/*/*',
        'mkdir -p "$1/go/src" "$1/go/bin" && chmod -R 1777 "$1/go"',
    ),
    trees=lambda: {"/usr/local/go": go_toolchain.goroot(GOLANG_VERSION)},
)
DISTROLESS_STATIC = Recipe(
    "gcr.io/distroless/static-debian12",
    ("base-files", "netbase", "tzdata", "ca-certificates"),  # distroless/static's packages
    {
        "User": "65532",
        "WorkingDir": "/home/nonroot",
        "Env": [PATH_ENV, "SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt"],
    },
    "made the way distroless makes it, from Debian's packages unpacked (base-files, netbase, tzdata,"
    " ca-certificates and what apt adds for them), no shell run in it",
    hooks=(
        'mkdir -p "$1/etc/ssl/certs" && cat "$1"/usr/share/ca-certificates/mozilla/*.crt'
        ' > "$1/etc/ssl/certs/ca-certificates.crt"',
        f'printf %s {shlex.quote(DISTROLESS_PASSWD)} > "$1/etc/passwd"',
        f'printf %s {shlex.quote(DISTROLESS_GROUP)} > "$1/etc/group"',
        'mkdir -p "$1/home/nonroot" "$1/tmp" && chown 65532:65532 "$1/home/nonroot" && chmod 1777 "$1/tmp"',
    ),
    variant="extract",
)
RECIPES = (ARGOCD, REDIS, GOLANG, DISTROLESS_STATIC)
# The base images of app-repo's multi-stage Dockerfiles that the lab's BuildKit builds from (the mirror).
BUILD_BASE_IMAGES = (
    f"docker.io/library/golang:{GOLANG_VERSION}-bookworm",
    "gcr.io/distroless/static-debian12:nonroot",
)


def split(reference: str) -> tuple[str, str, str]:
    """``host/path:tag`` -> (host, path, tag)."""
    name, _, tag = reference.rpartition(":")
    host, _, path = name.partition("/")
    if not (name and tag and "." in host and path):
        raise UpstreamImageError(f"not a registry/repository:tag reference: {reference!r}")
    return host, path, tag


def recipe_for(reference: str) -> Recipe:
    repository = reference.rpartition(":")[0]
    for recipe in RECIPES:
        if recipe.repository == repository:
            return recipe
    raise UpstreamImageError(
        f"{reference}: no recipe builds this image here (provisioning/lab/services/upstream_images.py)"
    )


def install_images(with_dex: bool = True) -> list[str]:
    """Every image Argo CD's pinned install.yaml names (without dex's when ``with_dex`` is false), sorted."""
    from provisioning import argocd_bootstrap

    found: set[str] = set()
    for obj in argocd_bootstrap.install_objects(argocd_bootstrap.UPSTREAM_NAMESPACE, with_dex=with_dex):
        pod = (obj.get("spec") or {}).get("template", {}).get("spec") or {}
        for container in (*pod.get("initContainers", []), *pod.get("containers", [])):
            found.add(container["image"])
    return sorted(found)


def cache_key(recipe: Recipe, tag: str, files: dict[str, Path]) -> str:
    parts = [machines.SUITE, recipe.variant, recipe.repository, tag, *recipe.packages, *recipe.hooks]
    parts += [f"{dest}={build.sha256(src)}" for dest, src in sorted(files.items())]
    parts += [f"{dest}={src}" for dest, src in sorted(recipe.trees().items())]
    return hashlib.sha256("\n".join(parts).encode()).hexdigest()[:16]


def _copy_hooks(files: dict[str, Path]) -> list[str]:
    return [f'install -D -m 0755 {shlex.quote(str(src))} "$1{dest}"' for dest, src in sorted(files.items())]


def layer(reference: str) -> Path:
    """The image's one layer (a tar), made once per cache key."""
    recipe = recipe_for(reference)
    _, _, tag = split(reference)
    files = recipe.files()
    name = recipe.repository.rpartition("/")[2]
    tarball = CACHE / f"{name}-{tag}-{cache_key(recipe, tag, files)}.tar"
    if tarball.exists():
        return tarball
    CACHE.mkdir(parents=True, exist_ok=True)
    with build.build_lock(f"image-{name}"):
        if not tarball.exists():
            _make_layer(recipe, files, tarball)
    return tarball


def _make_layer(recipe: Recipe, files: dict[str, Path], tarball: Path) -> None:
    partial = tarball.with_suffix(".partial.tar")
    trees = [
        f'mkdir -p "$1{dest}" && cp -r {shlex.quote(str(src))}/. "$1{dest}"'
        for dest, src in recipe.trees().items()
    ]
    hooks = [*_copy_hooks(files), *trees, *recipe.hooks]
    stage = "extract" if recipe.variant == "extract" else "customize"  # extract runs no customize hooks
    argv = [
        "mmdebstrap",
        f"--variant={recipe.variant}",
        f"--include={','.join(recipe.packages)}",
        *NO_DOCS,
        *(f"--{stage}-hook={hook}" for hook in hooks),
        machines.SUITE,
        str(partial),
        machines.MIRROR,
    ]
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=900)
    if proc.returncode != 0:
        partial.unlink(missing_ok=True)
        raise UpstreamImageError(f"{recipe.repository}: mmdebstrap failed: {proc.stderr.strip()[-600:]}")
    partial.rename(tarball)
    for stale in CACHE.glob(f"{recipe.repository.rpartition('/')[2]}-*.tar"):
        if stale != tarball and not stale.name.endswith(".partial.tar"):
            stale.unlink()


def push(reg: registry.Registry, reference: str) -> str:
    """Build (or reuse) and push ``reference`` under its upstream repository path and tag; its digest. The
    registry keeps blobs it has, so a second push uploads nothing and rewrites the same manifest."""
    recipe = recipe_for(reference)
    _, path, tag = split(reference)
    tarball = layer(reference)
    layer_file = oci.LayerFile(tarball, f"sha256:{build.sha256(tarball)}")
    config = oci.image_config([layer_file.digest], settings=recipe.settings)
    return oci.push_image_files(reg, path, tag, config, [layer_file])


def push_install_images(reg: registry.Registry, with_dex: bool = True) -> dict[str, str]:
    """Every image install.yaml names (dex's if ``with_dex``), in the lab's registry; {reference: digest}."""
    try:
        return {ref: push(reg, ref) for ref in install_images(with_dex)}
    except (registry.RegistryError, recipes.BuildError, OSError) as exc:
        raise UpstreamImageError(f"Argo CD's images: {exc}") from None
