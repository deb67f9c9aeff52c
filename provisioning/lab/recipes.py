"""What the lab builds and from which pinned source: each component's Go module, version (versions.toml),
tools, link flags and patches, the layer that first runs it, and where its cache entry lives.

The builder (provisioning/lab/build.py) reads these recipes; nothing here runs a build.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
import tomllib
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
VERSIONS_FILE = HERE / "versions.toml"
CACHE_ROOT = Path(os.environ.get("BOUTIQUE_LAB_CACHE", Path.home() / ".cache" / "boutique-lab"))


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
    "buildkit": 5,
    "crane": 5,
    "opentofu": 7,
    "terraform-provider-libvirt": 7,
}


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
    buildkit = v["buildkit"]["version"]
    crane = v["crane"]["version"]
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
        "buildkit": Component(
            name="buildkit",
            version=buildkit,
            tools=["github.com/moby/buildkit/cmd/buildkitd", "github.com/moby/buildkit/cmd/buildctl"],
            requires={"github.com/moby/buildkit": buildkit},
            ldflags=[
                f"-X github.com/moby/buildkit/version.Version={buildkit}",
                "-X github.com/moby/buildkit/version.Revision=module",
            ],
        ),
        "crane": Component(
            name="crane",
            version=crane,
            tools=["github.com/google/go-containerregistry/cmd/crane"],
            requires={"github.com/google/go-containerregistry": crane},
            ldflags=[f"-X github.com/google/go-containerregistry/cmd/crane/cmd.Version={crane}"],
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
