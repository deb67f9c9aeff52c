"""The lab's OCI registry (provisioning/lab/services/registry.py): built from the module proxy (cached),
started on 127.0.0.1 with a free port and its own state directory (never the lab's), push / tag / list /
delete over its API with TLS verified by the platform CA, a second ensure that changes nothing, and a real
pull by a throwaway containerd resolving ``registry.local`` through ``certs.d/registry.local/hosts.toml``;
registry.local behind htpasswd refuses anonymous pulls.
Marker ``standalone`` as the git server's tests: real processes, not the lab itself."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
from ports import free_port

from provisioning.lab import pki, processes
from provisioning.lab.services import oci, registry

pytestmark = pytest.mark.standalone

REPO = "boutique/frontend"


def tiny_image(text: bytes = b"hello from the lab registry\n") -> tuple[bytes, list[bytes]]:
    layer = oci.layer_tar({"hello.txt": text, "bin/hello": b"#!/bin/sh\necho hello\n"})
    return oci.image_config([layer], entrypoint=["/bin/hello"]), [layer]


@pytest.fixture(scope="module")
def reg(tmp_path_factory: pytest.TempPathFactory) -> Iterator[registry.Registry]:
    base = tmp_path_factory.mktemp("registry")
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(processes, "PLATFORM", base / "platform")  # process records and logs stay in tmp
        state = base / "registry"
        running = registry.ensure("127.0.0.1", free_port(), state=state, ca_dir=base / "pki")
        try:
            yield running
        finally:
            registry.stop(state)
            assert not processes.info(registry.PROCESS).alive


def test_ensure_twice_changes_nothing(reg: registry.Registry) -> None:
    files = [reg.state / "config.yml", reg.state / "tls" / "registry.crt", reg.state / "tls" / "registry.key"]
    before = {path: path.read_bytes() for path in files}
    again = registry.ensure(reg.host, reg.port, state=reg.state, ca_dir=reg.ca_file.parent)
    assert again == reg and again.pid is not None
    assert {path: path.read_bytes() for path in files} == before
    assert (reg.state / "tls" / "registry.key").stat().st_mode & 0o777 == 0o600


def test_config_has_tls_storage_delete_and_no_debug_listener(reg: registry.Registry) -> None:
    config = (reg.state / "config.yml").read_text()
    assert f'addr: "127.0.0.1:{reg.port}"' in config
    assert f'rootdirectory: "{reg.state / "storage"}"' in config
    assert "tls:" in config and "delete:\n    enabled: true" in config and "level: warn" in config
    assert "debug:" not in config and "auth:" not in config


def test_certificate_names_registry_local_and_the_listening_ip(reg: registry.Registry) -> None:
    crt = reg.state / "tls" / "registry.crt"
    assert pki.subject_alt_names(crt) == {"registry.local", "127.0.0.1"}
    ca = pki.CA(reg.ca_file, reg.ca_file.with_name("ca.key"))
    assert pki.server_cert_usable(pki.ServerCert(crt, reg.state / "tls" / "registry.key"), ca)


def test_tls_is_verified_with_the_platform_ca_and_refused_without_it(reg: registry.Registry) -> None:
    assert requests.get(f"{reg.url}/v2/", verify=str(reg.ca_file), timeout=10).status_code == 200
    with pytest.raises(requests.exceptions.SSLError, match="CERTIFICATE_VERIFY_FAILED"):
        requests.get(f"{reg.url}/v2/", timeout=10)  # the system's public CAs only


def test_a_layer_on_disk_is_pushed_as_its_bytes_would_be_and_not_read_when_the_registry_has_it(
    reg: registry.Registry, tmp_path: Path
) -> None:
    config, layers = tiny_image(b"a layer pushed from a file\n")
    path = tmp_path / "layer.tar"
    path.write_bytes(layers[0])
    from_file = oci.LayerFile(path, oci.digest(layers[0]))
    pushed = oci.push_image_files(reg, "boutique/from-file", "v1", config, [from_file])
    assert pushed == oci.push_image(reg, "boutique/from-file", "v1", config, layers)
    path.write_bytes(b"x" * len(layers[0]))  # read now, it would be refused: its digest no longer matches
    assert oci.push_image_files(reg, "boutique/from-file", "v2", config, [from_file]) == pushed
    fresh = oci.LayerFile(path, oci.digest(path.read_bytes()))
    assert oci.push_image_files(reg, "boutique/from-file", "v3", config, [fresh]) != pushed
    assert oci.has_blob(reg, "boutique/from-file", fresh.digest)


def test_push_tag_list_and_delete(reg: registry.Registry) -> None:
    config, layers = tiny_image()
    pushed = oci.push_image(reg, REPO, "v1", config, layers)
    assert pushed.startswith("sha256:")
    assert oci.push_image(reg, REPO, "v1", config, layers) == pushed, "same content, same digest"
    assert oci.has_blob(reg, REPO, oci.digest(layers[0]))
    assert oci.tag_image(reg, REPO, "v1", "abc1234") == pushed
    assert oci.tags(reg, REPO) == ["abc1234", "v1"]
    body, media_type = oci.get_manifest(reg, REPO, "abc1234")
    assert media_type == oci.OCI_MANIFEST and oci.digest(body) == pushed
    assert oci.has_manifest(reg, REPO, "abc1234")
    assert oci.delete_tag(reg, REPO, "abc1234")
    assert not oci.has_manifest(reg, REPO, "abc1234")
    assert oci.has_manifest(reg, REPO, "v1"), "deleting a tag keeps the other tags of its manifest"
    assert oci.tags(reg, REPO) == ["v1"]
    assert not oci.delete_tag(reg, REPO, "abc1234")
    assert oci.tags(reg, "boutique/never-pushed") == []
    with pytest.raises(registry.RegistryError, match="not found"):
        oci.tag_image(reg, REPO, "missing", "other")


def test_hosts_toml_points_registry_local_at_the_ip_with_the_ca(tmp_path: Path) -> None:
    ca = tmp_path / "ca.crt"
    text = registry.containerd_hosts_toml("https://10.77.0.1:5000", ca)
    assert text == (
        'server = "https://10.77.0.1:5000"\n'
        'capabilities = ["pull", "resolve"]\n'
        f'ca = "{ca}"\n\n'
        '[host."https://10.77.0.1:5000"]\n'
        '  capabilities = ["pull", "resolve"]\n'
        f'  ca = "{ca}"\n'
    ), "the mirror only: no fallback to https://registry.local, which no DNS resolves in the lab"
    assert "skip_verify" not in text
    paths = registry.write_certs_d(
        tmp_path / "certs.d", "https://10.77.0.1:5000", "https://10.77.0.1:5001", ca
    )
    hosts = ("registry.local", *registry.MIRRORED_UPSTREAMS)
    assert {"registry.k8s.io", "quay.io", "docker.io", "gcr.io"} <= set(registry.MIRRORED_UPSTREAMS)
    assert paths == [tmp_path / "certs.d" / host / "hosts.toml" for host in hosts]
    assert all(path.read_text() == text for path in paths[1:]), (
        "each upstream registry is mirrored the same way"
    )
    assert paths[0].read_text() == registry.containerd_hosts_toml("https://10.77.0.1:5001", ca), (
        "registry.local is its own registry, not the mirror"
    )
    assert all("auth" not in path.read_text().lower() for path in paths), "no credentials in the nodes' files"
    with pytest.raises(ValueError, match="https://<ip>:<port>"):
        registry.containerd_hosts_toml("http://10.77.0.1:5000", ca)


@pytest.fixture(scope="module")
def local(tmp_path_factory: pytest.TempPathFactory, reg: registry.Registry) -> Iterator[registry.Registry]:
    """registry.local: the same binary behind htpasswd, with credentials made in its own tmp state and a
    certificate from the mirror's CA (as in the lab)."""
    base = tmp_path_factory.mktemp("registry-local")
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(processes, "PLATFORM", base / "platform")
        state = base / "registry-local"
        running = registry.ensure_local("127.0.0.1", free_port(), state=state, ca_dir=reg.ca_file.parent)
        try:
            yield running
        finally:
            registry.stop(base / "registry", state)
            assert not processes.info(registry.LOCAL_PROCESS).alive


def test_registry_local_refuses_anonymous_and_wrong_credentials(local: registry.Registry) -> None:
    anonymous = requests.get(f"{local.url}/v2/", verify=str(local.ca_file), timeout=10)
    assert anonymous.status_code == 401
    assert anonymous.headers["WWW-Authenticate"] == 'Basic realm="registry.local"'
    wrong = requests.get(
        f"{local.url}/v2/", verify=str(local.ca_file), auth=("boutique-pull", "x"), timeout=10
    )
    assert wrong.status_code == 401
    assert registry.answers(local), "with the lab's credentials it answers"
    config, layers = tiny_image(b"private\n")
    oci.push_image(local, REPO, "private", config, layers)
    assert "private" in oci.tags(local, REPO)


def test_registry_local_credentials_stay_private_and_a_second_ensure_changes_nothing(
    local: registry.Registry,
) -> None:
    username, password = local.auth or ("", "")
    assert (username, len(password)) == ("boutique-pull", 32)
    password_file, htpasswd = local.state / "password", local.state / "htpasswd"
    assert password_file.stat().st_mode & 0o777 == 0o600 and htpasswd.stat().st_mode & 0o777 == 0o600
    assert password not in htpasswd.read_text() and password not in (local.state / "config.yml").read_text()
    assert password not in repr(local)
    before = {path: path.read_bytes() for path in (password_file, htpasswd, local.state / "config.yml")}
    again = registry.ensure_local(local.host, local.port, state=local.state, ca_dir=local.ca_file.parent)
    assert again.pid == local.pid
    assert {path: path.read_bytes() for path in before} == before


def test_htpasswd_line_is_bcrypt_for_that_password() -> None:
    import bcrypt

    user, _, hashed = registry.htpasswd_line("u", "secret", rounds=4).strip().partition(":")
    assert user == "u" and hashed.startswith("$2")
    assert bcrypt.checkpw(b"secret", hashed.encode()) and not bcrypt.checkpw(b"other", hashed.encode())


def test_argocds_admin_hash_is_bcrypt_at_argocds_cost_for_that_password() -> None:
    import bcrypt

    from provisioning.lab.services import argocd

    hashed = argocd._bcrypt("secret")  # read by Argo CD's Go bcrypt, as Distribution reads htpasswd_line's
    assert hashed.startswith("$2b$10$")
    assert bcrypt.checkpw(b"secret", hashed.encode()) and not bcrypt.checkpw(b"other", hashed.encode())


def test_other_address_new_port_and_taken_port(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Not loopback's first address (the lab's registry listens on its bridge gateway): readiness is its
    own TLS check. A new port restarts it with a new config; a port held by another process is an error."""
    monkeypatch.setattr(processes, "PLATFORM", tmp_path / "platform")  # its own records: apart from `reg`
    state, ca_dir = tmp_path / "registry", tmp_path / "pki"
    try:
        first = registry.ensure("127.0.0.2", free_port(), state=state, ca_dir=ca_dir)
        assert registry.answers(first)
        assert pki.subject_alt_names(state / "tls" / "registry.crt") == {"registry.local", "127.0.0.2"}
        moved = registry.ensure("127.0.0.2", free_port(), state=state, ca_dir=ca_dir)
        assert moved.pid != first.pid and registry.answers(moved) and not registry.answers(first, timeout=1)
        with socket.socket() as holder:
            holder.bind(("127.0.0.1", 0))
            holder.listen(1)
            with pytest.raises(registry.RegistryError, match="already in use"):
                registry.ensure("127.0.0.1", holder.getsockname()[1], state=state, ca_dir=ca_dir)
    finally:
        registry.stop(state)
    assert not processes.info(registry.PROCESS).alive


# --- a real pull by a throwaway containerd ------------------------------------------------------------


def containerd_config(root: Path) -> str:
    return "\n".join(
        [
            "version = 2",
            f'root = "{root / "root"}"',
            f'state = "{root / "state"}"',
            # CRI is the kubelet's interface (its registry config_path); ctr is given --hosts-dir instead.
            'disabled_plugins = ["io.containerd.grpc.v1.cri"]',
            "[grpc]",
            f'  address = "{root / "ctrd.sock"}"',
            "[ttrpc]",
            f'  address = "{root / "ctrd.sock.ttrpc"}"',
            "[debug]",
            '  address = ""',
            "[metrics]",
            '  address = ""',
            '[plugins."io.containerd.internal.v1.opt"]',
            f'  path = "{root / "opt"}"',
            "",
        ]
    )


def processes_mentioning(text: str) -> list[int]:
    found = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit() or int(proc.name) == os.getpid():
            continue
        with contextlib.suppress(OSError):
            if text.encode() in (proc / "cmdline").read_bytes():
                found.append(int(proc.name))
    return found


def mounts_under(root: Path) -> list[str]:
    points = [line.split()[4] for line in Path("/proc/self/mountinfo").read_text().splitlines()]
    return sorted((p for p in points if p == str(root) or p.startswith(f"{root}/")), reverse=True)


def wait_for_socket(proc: subprocess.Popen[bytes], sock: Path, log: Path, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while not sock.exists():
        if proc.poll() is not None or time.monotonic() > deadline:
            pytest.fail(f"containerd did not start: {log.read_text(errors='replace')[-1500:]}")
        time.sleep(0.1)


def cleanup_containerd(proc: subprocess.Popen[bytes], root: Path) -> None:
    """Stop containerd, kill any shim it left, unmount what it mounted under ``root``, delete ``root``."""
    proc.terminate()
    try:
        proc.wait(timeout=15)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=10)
    for pid in processes_mentioning(str(root)):  # shims carry the socket path in their arguments
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    for point in mounts_under(root):
        subprocess.run(["umount", "-l", point], check=False)
    shutil.rmtree(root, ignore_errors=True)


@pytest.fixture
def containerd() -> Iterator[tuple[Path, Path]]:
    """(its socket, its directory) for a containerd of its own; nothing of it remains afterwards."""
    if shutil.which("containerd") is None or shutil.which("ctr") is None:
        pytest.skip("containerd / ctr are not installed (Debian package containerd)")
    if os.geteuid() != 0:
        pytest.skip("containerd needs root")
    root = Path(tempfile.mkdtemp(prefix="ctrd-"))  # short: the socket path must fit in 108 bytes
    (root / "config.toml").write_text(containerd_config(root))
    log = root / "containerd.log"
    cmd = ["containerd", "--config", str(root / "config.toml")]
    if shutil.which("unshare"):  # its own mount namespace: any mount it makes ends with it
        cmd = ["unshare", "--mount", "--propagation", "private", *cmd]
    with log.open("wb") as out:
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        wait_for_socket(proc, root / "ctrd.sock", log)
        yield root / "ctrd.sock", root
    finally:
        cleanup_containerd(proc, root)
        assert not root.exists() and processes_mentioning(str(root)) == []


def ctr(sock: Path, *args: str) -> subprocess.CompletedProcess[str]:
    cmd = ["ctr", "--address", str(sock), "--namespace", "registry-test", *args]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=120)


def test_containerd_pulls_through_hosts_toml_and_a_missing_tag_is_not_found(
    reg: registry.Registry, local: registry.Registry, containerd: tuple[Path, Path]
) -> None:
    """registry.local's images need its credentials (a pod's pull secret); the mirror's need none."""
    sock, root = containerd
    config, layers = tiny_image(b"pulled by containerd\n")
    pushed = oci.push_image(local, "boutique/cartservice", "abc1234", config, layers)
    oci.push_image(reg, "boutique/cartservice", "abc1234", config, layers)
    certs_d = root / "certs.d"
    registry.write_certs_d(certs_d, reg.url, local.url, reg.ca_file)
    user = ":".join(local.auth or ())

    image = "registry.local/boutique/cartservice:abc1234"
    anonymous = ctr(sock, "images", "pull", "--hosts-dir", str(certs_d), image)
    assert anonymous.returncode != 0 and "401 Unauthorized" in anonymous.stderr, anonymous.stderr
    pulled = ctr(sock, "images", "pull", "--hosts-dir", str(certs_d), "--user", user, image)
    assert pulled.returncode == 0, pulled.stderr + pulled.stdout
    listed = ctr(sock, "images", "ls")
    assert image in listed.stdout and pushed in listed.stdout

    missing = ctr(
        sock,
        "images",
        "pull",
        "--hosts-dir",
        str(certs_d),
        "--user",
        user,
        "registry.local/boutique/cartservice:nope",
    )
    assert missing.returncode != 0
    assert "registry.local/boutique/cartservice:nope: not found" in missing.stderr, missing.stderr
    assert "no such host" not in missing.stderr, "containerd must not fall back to resolving registry.local"

    upstream = "registry.k8s.io/boutique/cartservice:abc1234"  # a mirrored upstream name: no credentials
    pulled = ctr(sock, "images", "pull", "--hosts-dir", str(certs_d), upstream)
    assert pulled.returncode == 0, pulled.stderr + pulled.stdout
    assert upstream in ctr(sock, "images", "ls").stdout

    other_ca = pki.ensure_ca(root / "other-ca")
    untrusted = root / "untrusted.d"
    registry.write_certs_d(untrusted, reg.url, local.url, other_ca.crt)
    refused = ctr(sock, "images", "pull", "--hosts-dir", str(untrusted), "--user", user, image)
    assert refused.returncode != 0 and "x509" in refused.stderr, refused.stderr
