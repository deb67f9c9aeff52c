"""Target files (``targets/*.yaml``): what the suite builds and verifies, validated on load.

A target never holds a secret: it names the environment variable (``*_env``) or file (``*_file``)
that does. Every bad field is reported as one line naming the file, the field and the expectation.
"""

from __future__ import annotations

import ipaddress
import os
import tomllib
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import (
    AfterValidator,
    BeforeValidator,
    Field,
    PositiveInt,
    PrivateAttr,
    ValidationError,
    model_validator,
)

from boutique_suite.run.target_access import (
    ArgoCDAccess,
    Cluster,
    EnvName,
    GitLab,
    Hostname,
    Monitoring,
    RegistryAccess,
    Slack,
    Strict,
    TargetError,
)
from boutique_suite.run.touches import Touches

ROOT = Path(__file__).resolve().parents[2]
TARGETS_DIR = ROOT / "targets"
# Where a run writes its evidence (summary, JUnit, Allure results and report, traceability, load files):
# reports/ unless BOUTIQUE_REPORTS names another directory (a nightly job's artifact directory).
REPORTS = Path(os.environ.get("BOUTIQUE_REPORTS") or ROOT / "reports").resolve()
REQUIRED_HOSTS = ("mini-pc", "k8s-master", "k8s-worker1", "k8s-worker2")


def _ipv4(value: str) -> str:
    try:
        ipaddress.IPv4Address(value)
    except ValueError:
        raise ValueError(f"expected an IPv4 address like 192.168.10.11, got {value!r}") from None
    return value


def _address_range(value: str) -> str:
    """MetalLB's forms of spec.addresses: a CIDR (192.168.10.0/24) or a range (first-last)."""
    try:
        ip_range(value)
    except ValueError:
        raise ValueError(
            f"expected an IPv4 range like 192.168.10.200-192.168.10.220 or a CIDR, got {value!r}"
        ) from None
    return value


def ip_range(value: str) -> tuple[ipaddress.IPv4Address, ipaddress.IPv4Address]:
    """(first, last) address of a range ``a-b`` or a CIDR; ValueError when it is neither."""
    if "-" in value:
        first, last = (ipaddress.IPv4Address(part.strip()) for part in value.split("-", 1))
        if last < first:
            raise ValueError(f"{value}: the last address comes before the first")
        return first, last
    net = ipaddress.IPv4Network(value, strict=True)
    return net.network_address, net.broadcast_address


IPv4 = Annotated[str, AfterValidator(_ipv4)]
AddressRange = Annotated[str, AfterValidator(_address_range)]


class Host(Strict):
    ip: IPv4
    roles: list[Literal["gitlab", "registry", "runner", "control-plane", "worker"]] = []
    ssh_user: str = "ubuntu"


class Ssh(Strict):
    private_key_file_env: EnvName | None = None
    port: PositiveInt = 22
    known_hosts_file: str | None = None  # the hosts' keys (default: the user's ~/.ssh/known_hosts)


def _lab_subnet() -> ipaddress.IPv4Network:
    """The lab bridge's subnet: the only addresses a lab pool may hand out (nothing of a real LAN)."""
    settings = tomllib.loads((ROOT / "provisioning" / "lab" / "settings.toml").read_text())
    return ipaddress.IPv4Network(settings["hosts"]["subnet"])


class Gateway(Strict):
    """Phase 3: MetalLB's L2 pool (name and address ranges, as in gitops-repo's pool.yaml) and the ingress
    VIP ingress-nginx's Service gets from it. The lab's ranges lie in the lab bridge's own subnet."""

    pool: Hostname = "boutique-pool"
    addresses: list[AddressRange] = Field(min_length=1)
    ingress_vip: IPv4

    def contains(self, ip: str) -> bool:
        address = ipaddress.IPv4Address(ip)
        return any(first <= address <= last for first, last in map(ip_range, self.addresses))

    @model_validator(mode="after")
    def _vip_in_pool(self) -> Gateway:
        if not self.contains(self.ingress_vip):
            raise ValueError(
                f"ingress_vip {self.ingress_vip} is not in the pool's addresses {self.addresses}"
            )
        return self


class Namespaces(Strict):
    dev: Hostname = "boutique-dev"
    prod: Hostname = "boutique-prod"
    scratch_prefix: Hostname = "suite"


class Timeouts(Strict):
    """Seconds per kind of step (the Chainsaw idea): apply, assert, rollout, alert, cleanup."""

    apply: PositiveInt = 30
    assertion: PositiveInt = Field(60, alias="assert")
    rollout: PositiveInt = 180
    alert: PositiveInt = 180
    cleanup: PositiveInt = 60


class Slo(Strict):
    """What the shoppers may expect of the storefront under the load scenarios' traffic."""

    storefront_p95_ms: PositiveInt = 500  # p95 latency of every storefront route, as Locust measures it


def _shorthand(value: object) -> object:
    return {"mode": value} if isinstance(value, str) else value


class Provision(Strict):
    """How the target provides one thing steps touch: ``real``, or ``simulated`` / ``absent`` and why."""

    mode: Literal["real", "simulated", "absent"]
    why: str = ""

    @model_validator(mode="after")
    def _why_unless_real(self) -> Provision:
        if self.mode != "real" and not self.why.strip():
            raise ValueError(f"a {self.mode} entry needs why: the reason the report shows")
        return self


class Target(Strict):
    name: Hostname
    kind: Literal["lab", "onprem"]
    description: str = ""
    allow_destructive: bool = False
    hosts: dict[Hostname, Host] = {}
    ssh: Ssh | None = None
    gitlab: GitLab | None = None
    registry: RegistryAccess | None = None
    cluster: Cluster
    slack: Slack
    argocd: ArgoCDAccess | None = None
    gateway: Gateway | None = None
    monitoring: Monitoring | None = None
    namespaces: Namespaces = Namespaces()
    timeouts: Timeouts = Timeouts()
    slo: Slo = Slo()
    execution: dict[Touches, Annotated[Provision, BeforeValidator(_shorthand)]] = {}
    workload: str = ""  # what runs as the Online Boutique, when it is not Google's own images
    application: Hostname = "online-boutique-dev"  # the Argo CD Application of the Boutique's dev overlay
    # Extra variables for the Ansible roles of phases 0-2 (provisioning/ansible), over the roles' defaults:
    # e.g. foundation_chrony_servers, foundation_apt_update. Never a secret (they go to reports/ansible/).
    ansible: dict[str, Any] = {}
    source: Path | None = Field(None, exclude=True)
    _site: Any = PrivateAttr(None)  # boutique_suite.context.sites.site_for's answer, made once

    @model_validator(mode="after")
    def _onprem_needs_hosts(self) -> Target:
        if self.kind == "onprem":
            missing = [h for h in REQUIRED_HOSTS if h not in self.hosts]
            if self.hosts and missing:  # no hosts at all: a cluster the suite does not build
                raise ValueError(
                    f"hosts: an onprem target needs {', '.join(missing)} "
                    "(or no hosts: at all, for a cluster the suite checks but does not build)"
                )
            if not self.hosts:  # whatever execution says: there is no host to reach
                self.execution[Touches.hosts] = Provision(
                    mode="absent",
                    why=f"{self._where} lists no hosts: its cluster is checked through its kubeconfig only, "
                    "never over ssh",
                )
            if self.gitlab is None:
                raise ValueError("gitlab: an onprem target needs url, registry and token_env")
        if self.kind == "lab" and self.gateway is not None:
            subnet = _lab_subnet()
            outside = [r for r in self.gateway.addresses if not all(ip in subnet for ip in ip_range(r))]
            if outside:
                raise ValueError(
                    f"gateway.addresses: the lab's pool must lie in the lab's own subnet {subnet} "
                    f"(provisioning/lab/settings.toml hosts.subnet), not {outside}"
                )
        return self

    def registry_access(self) -> RegistryAccess | None:
        """The private registry as the suite reaches it: the registry section, else the gitlab section's
        registry fields; None when the target names neither."""
        if self.registry is not None:
            return self.registry
        gitlab = self.gitlab
        if gitlab is None or not gitlab.registry_user:
            return None
        return RegistryAccess(
            host=gitlab.registry,
            ca_file=gitlab.ca_file,
            username=gitlab.registry_user,
            password_env=gitlab.token_env,
        )

    @property
    def _where(self) -> str:
        """How messages name this target: its file, or its name when it was not loaded from one."""
        return self.source.name if self.source else self.name

    @property
    def builds_hosts(self) -> bool:
        """The suite may build this target's hosts and cluster (Ansible over ssh): the lab always, an
        onprem target when it lists its hosts. Without hosts the cluster exists already and is only checked
        through its kubeconfig; ssh is never opened."""
        return self.kind == "lab" or bool(self.hosts)

    @property
    def argocd_namespace(self) -> str:
        return self.argocd.namespace if self.argocd else "argocd"

    def provides(self, touched: Touches) -> bool:
        return self.provision(touched).mode == "real"

    def downgrade(self, touched: Touches, why: str) -> None:
        """The target turned out not to provide ``touched`` for real (the lab fell back to KWOK nodes)."""
        self.execution[touched] = Provision(mode="simulated", why=why)

    def provision(self, touched: Touches) -> Provision:
        """What the target file says about ``touched``; a missing entry is absent (never real)."""
        default = Provision(mode="absent", why=f"{self._where} does not say how it provides {touched}")
        return self.execution.get(touched, default)


def resolve(name_or_path: str) -> Path:
    """``lab`` -> targets/lab.yaml; a path is taken as it is."""
    candidate = Path(name_or_path)
    if candidate.suffix in (".yaml", ".yml") or candidate.exists():
        return candidate
    return TARGETS_DIR / f"{name_or_path}.yaml"


def _field(loc: tuple[str | int, ...]) -> str:
    return ".".join(str(p) for p in loc) or "(top level)"


def load(name_or_path: str) -> Target:
    """Load and validate a target; raise TargetError with one line per problem."""
    path = resolve(name_or_path)
    if not path.is_file():
        known = ", ".join(sorted(p.stem for p in TARGETS_DIR.glob("*.yaml")))
        raise TargetError(f"{path}: no such target file (known targets: {known})")
    try:
        data = yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise TargetError(f"{path}: not valid YAML{where}: {problem}") from None
    if not isinstance(data, dict):
        raise TargetError(f"{path}: expected a mapping of fields (name, kind, cluster, ...)")
    try:
        return Target.model_validate({**data, "source": path})
    except ValidationError as exc:
        lines = []
        for err in exc.errors():
            msg = err["msg"].removeprefix("Value error, ")
            if err["type"] == "extra_forbidden":
                msg = "unknown field (secrets go in environment variables named by *_env fields)"
            elif err["type"] == "missing":
                msg = "required field is missing"
            lines.append(f"{path}: {_field(err['loc'])}: {msg}")
        raise TargetError("\n".join(lines)) from None
