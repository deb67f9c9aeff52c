"""Terraform modules of the platform (provisioning/terraform/*): formatted, valid and planned with the
OpenTofu that ./run setup builds (the project's build cache, sites.built_tools(): ``opentofu``,
``terraform-provider-libvirt``),
offline: providers come only from the project's local filesystem mirror. Where the project's tofu is not
built, a ``tofu`` or ``terraform`` on PATH is used (an on-prem user may have one), with the same mirror.

Commands that write (init, validate, plan) run in a scratch copy of each module, so the repository never gets
a ``.terraform/`` directory or a lock file. A plan can run against a scratch libvirt daemon (a session
daemon on a unix socket in a temporary directory) that :func:`scratch_libvirt` starts and removes."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from boutique_suite.context.sites import built_tools
from boutique_suite.run import waits
from boutique_suite.run.targets import ROOT

MODULES = ROOT / "provisioning" / "terraform"
PROVIDER = "terraform-provider-libvirt"
CLI_CONFIG: Path | None = (
    None  # TF_CLI_CONFIG_FILE for running tofu by hand too (default: in the build cache)
)
NO_MODULES = (
    "no Terraform module in the repository (provisioning/terraform/ holds no *.tf file): "
    "nothing for terraform fmt / validate to check"
)
NO_BINARY = (
    "OpenTofu is not built ({path} missing) and no tofu or terraform is on PATH: "
    "run ./run setup (builds tofu from the Go module proxy)"
)
NO_PROVIDERS = (
    "the libvirt provider's local mirror is not built ({path} missing), so tofu init cannot install it "
    "offline: run ./run setup (builds it from the Go module proxy)"
)
NO_LIBVIRTD = (
    "libvirtd is not installed, so no scratch libvirt daemon can answer terraform plan: run ./run setup "
    "with the Debian packages libvirt-daemon and libvirt-daemon-driver-qemu"
)
NO_ONPREM_STATE = (
    "the on-prem target names no libvirt host, Terraform state or variables for "
    "provisioning/terraform/libvirt yet: without the applied platform's state every plan reports "
    "changes, so no drift check is possible"
)
LIBVIRT_MODULE = "libvirt"
NODES = ("k8s-master", "k8s-worker1", "k8s-worker2")
# What the libvirt module creates on an empty libvirt: the network, the base image, per node VM, disk, ISO.
LIBVIRT_CREATES = frozenset(
    {"libvirt_network.platform", "libvirt_volume.base"}
    | {
        f'{kind}["{node}"]'
        for kind in ("libvirt_domain.node", "libvirt_volume.root", "libvirt_cloudinit_disk.init")
        for node in NODES
    }
)
SCRATCH_KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIBoutiqueSuiteScratchPlanKeyNotForAnyHost0000 scratch"


def modules(root: Path = MODULES) -> list[Path]:
    """Every directory under ``root`` holding *.tf files (a Terraform module)."""
    if not root.is_dir():
        return []
    return sorted({p.parent for p in root.rglob("*.tf") if ".terraform" not in p.parts})


def _built(name: str) -> Path | None:
    """The cache entry of component ``name`` when its build completed (the manifest is written last)."""
    return built_tools().built(name)


def built_tofu() -> Path:
    return built_tools().directory("opentofu") / "bin" / "tofu"


def binary() -> str | None:
    """The project's tofu, else a tofu or terraform on PATH, else None."""
    if _built("opentofu"):
        return str(built_tofu())
    return shutil.which("tofu") or shutil.which("terraform")


def mirror() -> Path | None:
    """The providers' filesystem mirror (unpacked layout), when built."""
    directory = _built(PROVIDER)
    return directory / built_tools().provider_mirror if directory else None


def unavailable(root: Path = MODULES) -> str | None:
    """Why the Terraform checks cannot run here, or None."""
    if not modules(root):
        return NO_MODULES
    if binary() is None:
        return NO_BINARY.format(path=built_tofu())
    if mirror() is None:
        tools = built_tools()
        return NO_PROVIDERS.format(path=tools.directory(PROVIDER) / tools.provider_mirror)
    return None


def cli_config(providers: Path) -> Path:
    """Write the CLI config that installs every provider from ``providers`` and from nowhere else."""
    text = (
        "# Written by boutique_suite/expectations/terraform.py: providers come from the local mirror"
        " only (offline).\n"
        "provider_installation {\n"
        "  filesystem_mirror {\n"
        f"    path = {json.dumps(str(providers))}\n"
        "  }\n"
        "}\n"
    )
    path = CLI_CONFIG or built_tools().cache_root / "tofu.tfrc"
    path.parent.mkdir(parents=True, exist_ok=True)
    if not path.exists() or path.read_text() != text:
        scratch = path.with_name(f".{path.name}.{os.getpid()}")
        scratch.write_text(text)
        scratch.replace(path)
    return path


def _env() -> dict[str, str]:
    providers = mirror()
    if providers is None:
        raise RuntimeError(unavailable() or "no provider mirror")
    return {
        **os.environ,
        "TF_CLI_CONFIG_FILE": str(cli_config(providers)),
        "TF_IN_AUTOMATION": "1",
        "TF_INPUT": "0",
        "CHECKPOINT_DISABLE": "1",
    }


def _terraform(module: Path, *args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    tool = binary()
    if tool is None:
        raise RuntimeError(NO_BINARY.format(path=built_tofu()))
    return subprocess.run(
        [tool, f"-chdir={module}", *args], capture_output=True, text=True, timeout=timeout, env=_env()
    )


@contextmanager
def _scratch_copy(module: Path) -> Iterator[Path]:
    with tempfile.TemporaryDirectory(prefix="boutique-tf-") as tmp:
        copy = Path(tmp) / module.name
        shutil.copytree(module, copy, ignore=shutil.ignore_patterns(".terraform", "*.tfstate*"))
        yield copy


def _init(module: Path) -> subprocess.CompletedProcess[str]:
    return _terraform(module, "init", "-backend=false", "-input=false", "-no-color")


def expect_formatted(root: Path = MODULES) -> None:
    unformatted = {}
    for module in modules(root):
        proc = _terraform(module, "fmt", "-check", "-recursive", "-no-color")
        if proc.returncode != 0:
            unformatted[str(module.relative_to(root))] = proc.stdout.split() or proc.stderr.strip()[:200]
    assert not unformatted, f"terraform fmt would change: {unformatted}"


def expect_valid(root: Path = MODULES) -> None:
    invalid = {}
    for module in modules(root):
        with _scratch_copy(module) as copy:
            init = _init(copy)
            proc = init if init.returncode != 0 else _terraform(copy, "validate", "-no-color")
        if proc.returncode != 0:
            invalid[str(module.relative_to(root))] = (proc.stderr or proc.stdout).strip()[-400:]
    assert not invalid, f"terraform validate failed: {invalid}"


# --- plan against a scratch libvirt ------------------------------------------------------------------


@dataclass(frozen=True)
class Plan:
    exit_code: int  # -detailed-exitcode: 0 no changes, 1 error, 2 changes
    changes: dict[str, list[str]]  # resource address -> actions (["create"], ["update"], ...)
    output: str


def plan(module: Path, variables: dict[str, object]) -> Plan:
    """``plan -detailed-exitcode`` of a scratch copy of ``module`` with ``variables``: what it would do."""
    with _scratch_copy(module) as copy:
        (copy / "scratch.tfvars.json").write_text(json.dumps(variables))
        init = _init(copy)
        if init.returncode != 0:
            return Plan(1, {}, init.stderr or init.stdout)
        args = ["plan", "-detailed-exitcode", "-input=false", "-no-color", "-lock=false"]
        proc = _terraform(copy, *args, "-var-file=scratch.tfvars.json", "-out=scratch.tfplan")
        if proc.returncode not in (0, 2):
            return Plan(proc.returncode, {}, proc.stderr or proc.stdout)
        shown = _terraform(copy, "show", "-json", "scratch.tfplan")
    changes = {
        rc["address"]: rc["change"]["actions"]
        for rc in json.loads(shown.stdout).get("resource_changes", [])
        if rc["change"]["actions"] != ["no-op"]
    }
    return Plan(proc.returncode, changes, proc.stdout)


def scratch_variables(uri: str) -> dict[str, object]:
    """Variables for a plan against a scratch libvirt: a throwaway key, an image path that is never read."""
    return {
        "libvirt_uri": uri,
        "base_image": "/nonexistent/debian-12-genericcloud-amd64.qcow2",
        "ssh_public_key": SCRATCH_KEY,
    }


def libvirt_unavailable() -> str | None:
    return None if shutil.which("libvirtd") else NO_LIBVIRTD


def _drop_privileges(home: Path) -> list[str]:
    """As root, the daemon runs as ``nobody``: an unprivileged libvirtd is a session daemon that keeps all
    its state under $HOME and $XDG_*_HOME (the temporary directory) and creates no bridge or firewall rule.
    Root still reaches its socket."""
    if os.geteuid() != 0:
        return []
    shutil.chown(home, "nobody", "nogroup")
    return ["setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups"]


def _wait_for_socket(proc: subprocess.Popen[bytes], socket: Path, log: Path, timeout: float = 30) -> None:
    def opened() -> waits.Check:
        if socket.exists():
            return waits.succeeded()
        return waits.failed("exited") if proc.poll() is not None else waits.pending()

    try:
        waits.until(opened, timeout=timeout, what=f"scratch libvirtd opens {socket}", interval=0.1)
    except (waits.WaitFailed, waits.WaitTimeout):
        tail = "\n".join(log.read_text(errors="replace").splitlines()[-10:])
        raise RuntimeError(f"scratch libvirtd did not open {socket} (exit {proc.poll()}):\n{tail}") from None


def _stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=15)


@contextmanager
def scratch_libvirt() -> Iterator[str]:
    """A libvirt daemon of its own on a unix socket in a temporary directory; yields its connection URI.
    Nothing listens on a network address; the daemon and the directory are gone afterwards (and the daemon
    exits on its own after 10 idle minutes if this process dies first)."""
    home = Path(tempfile.mkdtemp(prefix="boutique-libvirt-"))
    env = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "HOME": str(home)}
    env |= {f"XDG_{kind}_HOME": str(home / kind.lower()) for kind in ("CONFIG", "CACHE", "DATA")}
    env["XDG_RUNTIME_DIR"] = str(home / "run")
    log = home.with_suffix(".log")
    try:
        command = [*_drop_privileges(home), "libvirtd", "--timeout", "600"]
        with log.open("wb") as out:
            proc = subprocess.Popen(command, env=env, stdout=out, stderr=out, start_new_session=True)
        try:
            socket = home / "run" / "libvirt" / "libvirt-sock"
            _wait_for_socket(proc, socket, log)
            yield f"qemu+unix:///session?socket={socket}"
        finally:
            _stop(proc)
    finally:
        shutil.rmtree(home, ignore_errors=True)
        log.unlink(missing_ok=True)


def expect_plan_on_scratch_libvirt(root: Path = MODULES) -> Plan:
    """Plan the libvirt module against a scratch (empty) libvirt: it must exit 2 (changes) and would create
    exactly the network, the base image and each node's VM, disk and cloud-init ISO, nothing else."""
    with scratch_libvirt() as uri:
        result = plan(root / LIBVIRT_MODULE, scratch_variables(uri))
    assert result.exit_code == 2, (
        f"terraform plan -detailed-exitcode of {LIBVIRT_MODULE} against a scratch libvirt exited "
        f"{result.exit_code}, not 2 (changes): {result.output.strip()[-600:]}"
    )
    unexpected = {
        a: acts for a, acts in result.changes.items() if acts != ["create"] or a not in LIBVIRT_CREATES
    }
    missing = sorted(LIBVIRT_CREATES - result.changes.keys())
    assert not unexpected and not missing, (
        f"terraform plan of {LIBVIRT_MODULE} on an empty libvirt: unexpected {unexpected}, missing {missing}"
    )
    return result
