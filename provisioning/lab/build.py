"""Build the lab's binaries from the Go module proxy and cache them outside the repo.

Each component is built in a wrapper Go module under a temporary directory and moved into
``~/.cache/boutique-lab/<name>-<version>/`` only when every binary linked; a manifest of sha256
sums is written last, so an interrupted build or a corrupt file is detected and rebuilt.

Usage: ``python -m provisioning.lab.build [--force] [component ...]``
"""

from __future__ import annotations

import argparse
import contextlib
import fcntl
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import tomllib
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
VERSIONS_FILE = HERE / "versions.toml"
CACHE_ROOT = Path(os.environ.get("BOUTIQUE_LAB_CACHE", Path.home() / ".cache" / "boutique-lab"))
DIGESTS = CACHE_ROOT / "digests.json"  # sha256 of cached files by path and stat (see sha256)
MANIFEST = "manifest.json"


class BuildError(RuntimeError):
    """A build failed for a reason the user can act on."""


@dataclass
class Component:
    name: str
    version: str
    tools: list[str]  # Go packages to build, each gives one binary named after its last path element
    requires: dict[str, str] = field(default_factory=dict)
    replaces: Callable[[], dict[str, str]] = dict  # computed at build time only (may read the network)
    ldflags: list[str] = field(default_factory=list)
    rename: dict[str, str] = field(default_factory=dict)  # binary name -> name in the cache
    extra_files: dict[str, str] = field(default_factory=dict)  # file in module -> name in the cache
    go_sum: list[str] = field(default_factory=list)  # pinned go.sum lines (modules the sumdb lacks)
    # file in module -> [(exact text, replacement)], each text found exactly once, applied to a copy of
    # the module the wrapper replaces it with. Only for what upstream has no flag for (listen addresses).
    patches: dict[str, list[tuple[str, str]]] = field(default_factory=dict)
    links: dict[str, list[str]] = field(default_factory=dict)  # binary -> hard links in the cache (layouts)

    @property
    def directory(self) -> Path:
        """Keyed by the pinned version and, for a patched build, by its patches (a changed patch rebuilds)."""
        if not self.patches:
            return CACHE_ROOT / f"{self.name}-{self.version}"
        digest = hashlib.sha256(json.dumps(self.patches, sort_keys=True).encode()).hexdigest()[:10]
        return CACHE_ROOT / f"{self.name}-{self.version}-patched-{digest}"

    def binary_names(self) -> list[str]:
        names = [tool.rsplit("/", 1)[1] for tool in self.tools]
        return [self.rename.get(n, n) for n in names]


def load_versions() -> dict[str, dict[str, Any]]:
    with VERSIONS_FILE.open("rb") as fh:
        return tomllib.load(fh)


def bin_dir(name: str) -> Path:
    """Where the cached binaries of component ``name`` live."""
    return components()[name].directory / "bin"


def go_proxy() -> str:
    return os.environ.get("GOPROXY", "https://proxy.golang.org").split(",")[0]


def _go_mod_lines(module: str, version: str) -> list[list[str]]:
    """The lines of ``module``'s own go.mod (cached), each split into words, ``replace`` dropped."""
    url = f"{go_proxy()}/{module}/@v/{version}.mod"
    cached = CACHE_ROOT / "gomod" / f"{module.replace('/', '_')}-{version}.mod"
    if not cached.exists():
        cached.parent.mkdir(parents=True, exist_ok=True)
        try:
            with urllib.request.urlopen(url, timeout=60) as resp:
                cached.write_bytes(resp.read())
        except OSError as exc:
            raise BuildError(f"cannot read {url}: {exc} (is the Go module proxy reachable?)") from exc
    lines = []
    for line in cached.read_text().splitlines():
        parts = line.split("//")[0].split()
        lines.append(parts[1:] if parts[:1] == ["replace"] else parts)
    return lines


def module_replaces(module: str, version: str) -> list[list[str]]:
    """The replace lines of ``module``'s own go.mod, each split into words (``X => Y [v]``)."""
    return [p for p in _go_mod_lines(module, version) if len(p) >= 3 and p[1] == "=>"]


def versioned_replaces(module: str, version: str) -> dict[str, str]:
    """The ``X vN => Y vM`` replaces of ``module``'s go.mod as ``X => Y vM``: the wrapper may select
    another version of X than the one the replace names."""
    return {p[0]: " ".join(p[3:]) for p in _go_mod_lines(module, version) if len(p) == 5 and p[2] == "=>"}


def kubernetes_staging_modules(version: str) -> list[str]:
    """The staging modules k8s.io/kubernetes replaces with ./staging/..., from its own go.mod."""
    modules = [p[0] for p in module_replaces("k8s.io/kubernetes", version) if p[2].startswith("./staging/")]
    if not modules:
        raise BuildError(f"no staging replace lines found in k8s.io/kubernetes {version}'s go.mod")
    return modules


def copied_replaces(module: str, version: str) -> dict[str, str]:
    """Every module => module replace of ``module``'s go.mod (local-path replaces are dropped)."""
    return {
        p[0]: " ".join(p[2:])
        for p in module_replaces(module, version)
        if not p[2].startswith(".") and len(p) == 4
    }


METALLB_LOOPBACK_METRICS = 'MetricsHost: "127.0.0.1", MetricsPort: *port,'


# The first layer (phase) of the platform that runs each component: `build --through 3` builds what
# `pytest -m phase3` starts and leaves the rest (Terraform, monitoring, Sealed Secrets) to the run that
# needs it (each layer's ensure builds its own components too, so nothing is ever missing, only later).
FIRST_LAYER = {
    "kubernetes": 2,
    "kubernetes-node": 2,
    "etcd": 2,
    "kwok": 2,
    "coredns": 2,
    "metrics-server": 2,
    "distribution": 2,
    "argocd": 3,
    "kustomize": 3,
    "metallb": 3,
    "metallb-speaker": 3,
    "kube-state-metrics": 6,
    "sealed-secrets": 7,
    "opentofu": 7,
    "terraform-provider-libvirt": 7,
}
SCRATCH_PREFIX = ".build-{name}@"  # a build's scratch directory in CACHE_ROOT ("@": no component name has it)
BUILD_SECONDS = "build-seconds.json"  # in CACHE_ROOT: each component's last build time here, the estimate


def components() -> dict[str, Component]:
    v = load_versions()
    kube, staging = v["kubernetes"]["version"], v["kubernetes"]["staging"]
    major, minor = kube.lstrip("v").split(".")[:2]
    now = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(0))
    kube_ldflags = [
        f"-X {pkg}.{key}={val}"
        for pkg in ("k8s.io/component-base/version", "k8s.io/client-go/pkg/version")
        for key, val in (
            ("gitVersion", kube),
            ("gitMajor", major),
            ("gitMinor", minor),
            ("gitTreeState", "clean"),
            ("buildDate", now),
        )
    ]
    argocd = v["argocd"]["version"]
    kustomize = v["kustomize"]["version"]
    etcd = v["etcd"]["version"]
    kwok = v["kwok"]["version"]
    coredns = v["coredns"]["version"]
    ms = v["metrics-server"]["version"]
    sealed = v["sealed-secrets"]["version"]
    ksm = v["kube-state-metrics"]["version"]
    metallb = v["metallb"]["version"]
    frr_k8s = v["metallb"]["frr_k8s"]
    distribution = v["distribution"]["version"]
    tofu = v["opentofu"]["version"]
    libvirt = v["terraform-provider-libvirt"]["version"]
    return {
        "kubernetes": Component(
            name="kubernetes",
            version=kube,
            tools=[
                f"k8s.io/kubernetes/cmd/{c}"
                for c in ("kube-apiserver", "kube-controller-manager", "kube-scheduler", "kubectl")
            ],
            requires={"k8s.io/kubernetes": kube},
            replaces=lambda: {m: f"{m} {staging}" for m in kubernetes_staging_modules(kube)},
            ldflags=kube_ldflags,
        ),
        # The node side of the same wrapper module: each lab host runs a real kubelet and kube-proxy.
        "kubernetes-node": Component(
            name="kubernetes-node",
            version=kube,
            tools=[f"k8s.io/kubernetes/cmd/{c}" for c in ("kubelet", "kube-proxy")],
            requires={"k8s.io/kubernetes": kube},
            replaces=lambda: {m: f"{m} {staging}" for m in kubernetes_staging_modules(kube)},
            ldflags=kube_ldflags,
        ),
        "etcd": Component(
            name="etcd",
            version=etcd,
            tools=["go.etcd.io/etcd/server/v3"],
            requires={"go.etcd.io/etcd/server/v3": etcd},
            rename={"v3": "etcd"},
            ldflags=[f"-X go.etcd.io/etcd/api/v3/version.GitSHA=module-{etcd}"],
        ),
        "kwok": Component(
            name="kwok",
            version=kwok,
            tools=["sigs.k8s.io/kwok/cmd/kwok", "sigs.k8s.io/kwok/cmd/kwokctl"],
            requires={"sigs.k8s.io/kwok": kwok},
            ldflags=[
                f"-X sigs.k8s.io/kwok/pkg/consts.Version={kwok}",
                f"-X sigs.k8s.io/kwok/pkg/consts.KubeVersion={kube}",
            ],
        ),
        "coredns": Component(
            name="coredns",
            version=coredns,
            tools=["github.com/coredns/coredns"],
            requires={"github.com/coredns/coredns": coredns},
            ldflags=[f"-X github.com/coredns/coredns/coremain.GitCommit=module-{coredns}"],
        ),
        "metrics-server": Component(
            name="metrics-server",
            version=ms,
            tools=["sigs.k8s.io/metrics-server/cmd/metrics-server"],
            requires={"sigs.k8s.io/metrics-server": ms},
            ldflags=[
                f"-X sigs.k8s.io/metrics-server/pkg/version.gitVersion={ms}",
                "-X sigs.k8s.io/metrics-server/pkg/version.gitTreeState=clean",
            ],
            extra_files={"manifests/base": "manifests"},
        ),
        "argocd": Component(
            name="argocd",
            version=argocd,
            tools=["github.com/argoproj/argo-cd/v3/cmd"],
            requires={"github.com/argoproj/argo-cd/v3": argocd},
            replaces=lambda: copied_replaces("github.com/argoproj/argo-cd/v3", argocd),
            rename={"cmd": "argocd"},
            ldflags=[
                f"-X github.com/argoproj/argo-cd/v3/common.version={argocd.lstrip('v')}",
                f"-X github.com/argoproj/argo-cd/v3/common.gitTag={argocd}",
                "-X github.com/argoproj/argo-cd/v3/common.gitTreeState=clean",
                f"-X github.com/argoproj/argo-cd/v3/common.buildDate={now}",
            ],
        ),
        "kustomize": Component(
            name="kustomize",
            version=kustomize,
            tools=["sigs.k8s.io/kustomize/kustomize/v5"],
            requires={"sigs.k8s.io/kustomize/kustomize/v5": kustomize},
            rename={"v5": "kustomize"},
            ldflags=[f"-X sigs.k8s.io/kustomize/api/provenance.version=kustomize/{kustomize}"],
        ),
        "sealed-secrets": Component(
            name="sealed-secrets",
            version=sealed,
            tools=[
                "github.com/bitnami/sealed-secrets/cmd/controller",
                "github.com/bitnami/sealed-secrets/cmd/kubeseal",
            ],
            # The module's own path; the proxy serves it under the old bitnami-labs name.
            requires={"github.com/bitnami/sealed-secrets": sealed},
            replaces=lambda: {
                "github.com/bitnami/sealed-secrets": f"github.com/bitnami-labs/sealed-secrets {sealed}"
            },
            rename={"controller": "sealed-secrets-controller"},
            ldflags=[f"-X main.VERSION={sealed}"],
            extra_files={"helm/sealed-secrets/crds": "crds"},
        ),
        "kube-state-metrics": Component(
            name="kube-state-metrics",
            version=ksm,
            tools=["k8s.io/kube-state-metrics/v2"],
            requires={"k8s.io/kube-state-metrics/v2": ksm},
            rename={"v2": "kube-state-metrics"},
            go_sum=v["kube-state-metrics"].get("go_sum", []),
            ldflags=[
                f"-X github.com/prometheus/common/version.Version={ksm.lstrip('v')}",
                "-X github.com/prometheus/common/version.Branch=release",
            ],
        ),
        # The speaker announces LoadBalancer addresses (L2: ARP) from the nodes, as MetalLB's own DaemonSet
        # (its manifest read from the module); a component of its own, so the controller's entry stays as is.
        "metallb-speaker": Component(
            name="metallb-speaker",
            version=metallb,
            tools=["go.universe.tf/metallb/speaker"],
            requires={"go.universe.tf/metallb": metallb},
            replaces=lambda: {"github.com/metallb/frr-k8s": f"github.com/metallb/frr-k8s {frr_k8s}"},
            rename={"speaker": "metallb-speaker"},
            ldflags=[
                f"-X go.universe.tf/metallb/internal/version.gitCommit=module-{metallb}",
                f"-X go.universe.tf/metallb/internal/version.gitBranch={metallb}",
            ],
            extra_files={"config/manifests": "manifests"},
        ),
        "metallb": Component(
            name="metallb",
            version=metallb,
            tools=["go.universe.tf/metallb/controller"],
            requires={"go.universe.tf/metallb": metallb},
            # The version MetalLB's go.mod asks for is not served by the module proxy (see versions.toml).
            replaces=lambda: {"github.com/metallb/frr-k8s": f"github.com/metallb/frr-k8s {frr_k8s}"},
            rename={"controller": "metallb-controller"},
            ldflags=[
                f"-X go.universe.tf/metallb/internal/version.gitCommit=module-{metallb}",
                f"-X go.universe.tf/metallb/internal/version.gitBranch={metallb}",
            ],
            extra_files={"config/crd/bases": "crds"},
            # Its metrics listener has no host flag (all interfaces): the lab's stays on loopback.
            patches={"controller/main.go": [("MetricsPort: *port,", METALLB_LOOPBACK_METRICS)]},
        ),
        "distribution": Component(
            name="distribution",
            version=distribution,
            tools=["github.com/distribution/distribution/v3/cmd/registry"],
            requires={"github.com/distribution/distribution/v3": distribution},
            go_sum=v["distribution"].get("go_sum", []),
            ldflags=[
                f"-X github.com/distribution/distribution/v3/version.version={distribution}",
                "-X github.com/distribution/distribution/v3/version.revision=module",
            ],
        ),
        "opentofu": Component(
            name="opentofu",
            version=tofu,
            tools=["github.com/opentofu/opentofu/cmd/tofu"],
            requires={"github.com/opentofu/opentofu": tofu},
            replaces=lambda: versioned_replaces("github.com/opentofu/opentofu", tofu),
            ldflags=["-X github.com/opentofu/opentofu/version.dev=no"],
        ),
        "terraform-provider-libvirt": Component(
            name="terraform-provider-libvirt",
            version=libvirt,
            tools=["github.com/dmacvicar/terraform-provider-libvirt"],
            requires={"github.com/dmacvicar/terraform-provider-libvirt": libvirt},
            replaces=lambda: copied_replaces("github.com/dmacvicar/terraform-provider-libvirt", libvirt),
            ldflags=[f"-X github.com/dmacvicar/terraform-provider-libvirt/version.ProviderVersion={libvirt}"],
            links={"terraform-provider-libvirt": provider_mirror_paths("dmacvicar", "libvirt", libvirt)},
        ),
    }


PROVIDER_MIRROR = "mirror"  # in a provider's cache entry: a filesystem_mirror for tofu and terraform


def provider_mirror_paths(namespace: str, kind: str, version: str) -> list[str]:
    """Where tofu's (and terraform's) unpacked filesystem-mirror layout expects the provider's executable:
    ``HOSTNAME/NAMESPACE/TYPE/VERSION/OS_ARCH/terraform-provider-TYPE_vVERSION``."""
    plain = version.lstrip("v")
    return [
        f"{PROVIDER_MIRROR}/{host}/{namespace}/{kind}/{plain}/linux_amd64/terraform-provider-{kind}_v{plain}"
        for host in ("registry.opentofu.org", "registry.terraform.io")
    ]


def sha256(path: Path) -> str:
    """sha256 of ``path``, hex. Kept in DIGESTS by path, inode, size and times (rsync's quick check): each
    layer ensure verifies its components' binaries and the Argo CD image's 380 MiB layer, which change only
    when rebuilt; a file written again is hashed again."""
    stat = path.stat()
    stamp = f"{stat.st_ino}:{stat.st_size}:{stat.st_mtime_ns}:{stat.st_ctime_ns}"
    try:
        kept = json.loads(DIGESTS.read_text())
    except (OSError, ValueError):
        kept = {}
    entry = kept.get(str(path))
    if isinstance(entry, dict) and entry.get("stamp") == stamp:
        return str(entry["sha256"])
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    kept = {p: e for p, e in kept.items() if Path(p).exists()}  # no record outlives its file
    kept[str(path)] = {"stamp": stamp, "sha256": digest.hexdigest()}
    try:
        DIGESTS.parent.mkdir(parents=True, exist_ok=True)
        partial = DIGESTS.with_suffix(f".{os.getpid()}.partial")
        partial.write_text(json.dumps(kept, indent=1, sort_keys=True))
        partial.replace(DIGESTS)  # concurrent writers: the last one wins, a lost entry costs one hash
    except OSError:
        pass  # a read-only cache costs the hash next time, nothing else
    return digest.hexdigest()


def verify(component: Component) -> str | None:
    """Return None when the cache entry is complete and intact, else what is wrong with it."""
    manifest = component.directory / MANIFEST
    if not manifest.exists():
        return "not built" if not component.directory.exists() else "incomplete (no manifest)"
    try:
        sums = json.loads(manifest.read_text())["sha256"]
    except (ValueError, KeyError):
        return "manifest unreadable"
    for name in component.binary_names():
        path = component.directory / "bin" / name
        if not path.exists():
            return f"{name} missing"
        if sums.get(name) != sha256(path):
            return f"{name} corrupt (sha256 mismatch)"
        for link in component.links.get(name, []):
            linked = component.directory / link
            if not linked.exists() or not linked.samefile(path):
                return f"{link} missing"
    return None


HEARTBEAT_SECONDS = 60


def _run(cmd: list[str], cwd: Path, env: dict[str, str], log: Path, progress: Callable[[], str]) -> None:
    """Run one build command into ``log``; every minute, print ``progress()`` so a person sees it works."""
    with log.open("a") as out:
        out.write(f"$ {' '.join(cmd)}\n")
        out.flush()
        proc = subprocess.Popen(cmd, cwd=cwd, env=env, stdout=out, stderr=subprocess.STDOUT)
        while True:
            try:
                proc.wait(timeout=HEARTBEAT_SECONDS)
                break
            except subprocess.TimeoutExpired:
                print(progress(), file=sys.stderr, flush=True)
    if proc.returncode != 0:
        tail = "\n".join(log.read_text().splitlines()[-15:])
        raise BuildError(f"`{' '.join(cmd[:3])} …` failed (exit {proc.returncode}); log {log}:\n{tail}")


def _module_dir(module: str, cwd: Path, env: dict[str, str]) -> Path:
    return Path(
        subprocess.run(
            ["go", "list", "-m", "-f", "{{.Dir}}", module],
            cwd=cwd,
            env=env,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
    )


def patched_source(original: str, edits: list[tuple[str, str]], where: str) -> str:
    """``original`` with each exact text replaced; a text not found exactly once is a BuildError (the
    pinned version changed under the patch: look at the file again)."""
    for old, new in edits:
        count = original.count(old)
        if count != 1:
            raise BuildError(f"patch for {where}: expected {old!r} once, found it {count} times")
        original = original.replace(old, new)
    return original


def _patch_module(component: Component, work: Path, env: dict[str, str]) -> None:
    """Copy the required module out of the module cache into the wrapper's ``patched/`` directory, apply
    the component's patches there and point the wrapper module at it (a ``replace`` line). The module
    cache stays pristine (go refuses overlays of files beneath it)."""
    if not component.patches:
        return
    module = next(iter(component.requires))
    copy = work / "patched"
    shutil.copytree(_module_dir(module, work, env), copy)
    for path in copy.rglob("*"):
        path.chmod(0o755 if path.is_dir() else 0o644)
    for rel, edits in component.patches.items():
        target = copy / rel
        target.write_text(patched_source(target.read_text(), edits, f"{module}/{rel}"))
    with (work / "go.mod").open("a") as mod:
        mod.write(f"\nreplace {module} => ./patched\n")


def _go_env() -> dict[str, str]:
    env = dict(os.environ)
    env.setdefault("GOFLAGS", "-mod=mod")
    env["CGO_ENABLED"] = "0"
    env.setdefault("GOTOOLCHAIN", "local")
    return env


def _require_go() -> None:
    if shutil.which("go") is None:
        raise BuildError(
            "the Go toolchain is missing: install Go >= 1.26 (https://go.dev/doc/install) "
            "and put `go` on PATH"
        )


def _minutes(seconds: float) -> str:
    return f"{int(seconds // 60)}m{int(seconds % 60):02d}s"


def last_build_seconds() -> dict[str, float]:
    try:
        return {k: float(v) for k, v in json.loads((CACHE_ROOT / BUILD_SECONDS).read_text()).items()}
    except (OSError, ValueError, AttributeError):
        return {}


def _remember_build_seconds(component: Component, seconds: float) -> None:
    known = last_build_seconds()
    known[component.name] = round(seconds, 1)
    (CACHE_ROOT / BUILD_SECONDS).write_text(json.dumps(known, indent=2, sort_keys=True))


def build(component: Component, force: bool = False, step: str = "") -> Path:
    """Build one component unless a complete, intact cache entry exists. Returns its bin directory.
    ``step`` ("[3/11] ") prefixes the progress lines."""
    problem = verify(component)
    if problem is None and not force:
        return component.directory / "bin"
    _require_go()
    CACHE_ROOT.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=SCRATCH_PREFIX.format(name=component.name), dir=CACHE_ROOT))
    log = CACHE_ROOT / f"build-{component.name}-{component.version}.log"
    log.write_text("")
    last = last_build_seconds().get(component.name)
    estimate = f"took {_minutes(last)} last time here" if last else "first build here"
    print(
        f"{step}building {component.name} {component.version} ({problem}; {estimate}); log: {log}",
        file=sys.stderr,
        flush=True,
    )
    started = time.monotonic()

    def progress() -> str:
        return f"{step}  ... {component.name} still building, {_minutes(time.monotonic() - started)} so far"

    try:
        lines = [f"module boutique-lab/{component.name}", "", "go 1.26.0", ""]
        replaces = component.replaces()
        if replaces:
            lines += ["replace ("] + [f"\t{m} => {t}" for m, t in replaces.items()] + [")"]
        (work / "go.mod").write_text("\n".join(lines) + "\n")
        if component.go_sum:
            (work / "go.sum").write_text("\n".join(component.go_sum) + "\n")
        env = _go_env()
        get = ["go", "get"]
        get += [f"{m}@{v}" for m, v in component.requires.items()]
        _run(get, work, env, log, progress)
        (work / "bin").mkdir()
        ldflags = " ".join(["-s", "-w", *component.ldflags])
        _patch_module(component, work, env)
        for tool in component.tools:
            name = tool.rsplit("/", 1)[1]
            out = work / "bin" / component.rename.get(name, name)
            go_build = ["go", "build", "-trimpath", "-ldflags", ldflags, "-o", str(out), tool]
            _run(go_build, work, env, log, progress)
        for src, dst in component.extra_files.items():
            mod_dir = _module_dir(next(iter(component.requires)), work, env)
            shutil.copytree(mod_dir / src, work / dst)
            for path in (work / dst).rglob("*"):
                path.chmod(0o755 if path.is_dir() else 0o644)
        shutil.rmtree(work / "patched", ignore_errors=True)  # the patched copy of the source is not kept
        for name, links in component.links.items():
            for link in links:
                (work / link).parent.mkdir(parents=True, exist_ok=True)
                os.link(work / "bin" / name, work / link)
        sums = {n: sha256(work / "bin" / n) for n in component.binary_names()}
        (work / MANIFEST).write_text(
            json.dumps(
                {
                    "component": component.name,
                    "version": component.version,
                    "built_seconds": round(time.monotonic() - started, 1),
                    "sha256": sums,
                },
                indent=2,
            )
        )
        if component.directory.exists():
            shutil.rmtree(component.directory)
        work.rename(component.directory)
    finally:
        if work.exists():
            shutil.rmtree(work, ignore_errors=True)
    took = time.monotonic() - started
    _remember_build_seconds(component, took)
    print(f"{step}built {component.name} in {_minutes(took)}", file=sys.stderr, flush=True)
    return component.directory / "bin"


def through_layer(layer: int) -> list[str]:
    """The components the platform's layers 0..``layer`` run."""
    return [name for name in components() if FIRST_LAYER[name] <= layer]


def ensure_all(names: list[str] | None = None, force: bool = False) -> dict[str, Path]:
    available = components()
    wanted = names or list(available)
    unknown = [n for n in wanted if n not in available]
    if unknown:
        raise BuildError(f"unknown component(s) {unknown}; known: {sorted(available)}")
    if not force and all(verify(available[n]) is None for n in wanted):
        return {n: available[n].directory / "bin" for n in wanted}
    CACHE_ROOT.mkdir(parents=True, exist_ok=True)
    todo = [n for n in wanted if force or verify(available[n]) is not None]
    _require_go()
    known = last_build_seconds()
    if len(todo) > 1:
        guess = sum(known.get(n, 0) for n in todo)
        print(
            f"building {len(todo)} of {len(wanted)} components: {', '.join(todo)}"
            + (f" (about {_minutes(guess)} by the last builds here)" if guess else ""),
            file=sys.stderr,
            flush=True,
        )
    step = {n: f"[{i}/{len(todo)}] " if len(todo) > 1 else "" for i, n in enumerate(todo, 1)}  # to build
    bins = {}
    for n in wanted:
        if n not in step:
            bins[n] = available[n].directory / "bin"
            continue
        # One builder per component: a second process wanting it waits, then finds the cache filled; one
        # wanting another component (a test while setup builds the later layers beside it) goes on.
        with build_lock(n):
            for stale in CACHE_ROOT.glob(f"{SCRATCH_PREFIX.format(name=n)}*"):  # of an interrupted build
                shutil.rmtree(stale, ignore_errors=True)
            fresh = force or verify(available[n]) is not None
            bins[n] = (
                build(available[n], force=force, step=step[n]) if fresh else available[n].directory / "bin"
            )
    return bins


@contextlib.contextmanager
def build_lock(name: str) -> Iterator[None]:
    with (CACHE_ROOT / f".build-{name}.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("components", nargs="*")
    parser.add_argument("--force", action="store_true", help="rebuild even when the cache is intact")
    parser.add_argument(
        "--through", type=int, metavar="LAYER", help="only what the platform's layers 0..LAYER run"
    )
    parser.add_argument(
        "--after", type=int, metavar="LAYER", help="only what layers after LAYER add (built beside the tests)"
    )
    args = parser.parse_args(argv)
    try:
        wanted = args.components or (through_layer(args.through) if args.through is not None else None)
        if args.after is not None:
            later = [n for n in wanted or components() if FIRST_LAYER[n] > args.after]
            wanted = sorted(later, key=FIRST_LAYER.__getitem__)  # in the order the layers need them
        for name, path in ensure_all(wanted, args.force).items():
            print(f"{name}: {path}")
    except BuildError as exc:
        print(f"lab build: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
