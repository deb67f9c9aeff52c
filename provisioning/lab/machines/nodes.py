"""Real nodes: containerd + runc + CNI + kubelet + kube-proxy on each of the lab's hosts.

Every host (provisioning/lab/machines/hosts.py) runs its own containerd (own root, state and socket, CNI
bridge ``cni0`` with host-local addresses from the pod range the controller-manager gave the node), a kubelet
(cgroupfs driver under ``/boutique-lab-<host>`` in every cgroup v1 controller) and kube-proxy (iptables mode)
in its network namespace. Images are pulled from the lab's registry (provisioning/lab/services/registry.py),
which containerd finds through ``certs.d/registry.local/hosts.toml`` trusting the platform CA, as on-prem.

``down`` removes what the nodes made, in order: pods' containers through containerd, the daemons, every mount
under the nodes' directories, the pods' network namespaces, the cgroups, then the hosts."""

from __future__ import annotations

import contextlib
import datetime
import json
import os
import shutil
import signal
import subprocess
import warnings
from collections.abc import Callable
from pathlib import Path

from boutique_suite.run import waits
from provisioning.lab import build, processes
from provisioning.lab.machines import cgroups, containerd, hosts

KUBELET_CONFIG_API = "kubelet.config.k8s.io/v1beta1"


class NodeError(Exception):
    """A real node could not be started; the message names the node and its log."""


def missing_tools() -> list[str]:
    daemon, cni = containerd.CONTAINERD, containerd.CNI_BIN
    needed = {daemon: "containerd", "runc": "runc", "ctr": "containerd", "conntrack": "conntrack"}
    missing = [f"{tool} (Debian: {pkg})" for tool, pkg in needed.items() if shutil.which(tool) is None]
    if not (cni / "bridge").exists():
        missing.append(f"{cni}/bridge (Debian: containernetworking-plugins)")
    return missing


# --- credentials -------------------------------------------------------------------------------


def _client_cert(pki: Path, out: Path, common_name: str, organization: str | None) -> None:
    """A client certificate for ``common_name`` signed by the cluster's CA (what kubeadm's join gives)."""
    if out.with_suffix(".crt").exists() and out.with_suffix(".key").exists():
        return
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    with warnings.catch_warnings():  # kwokctl's CA has a serial number cryptography warns about
        warnings.simplefilter("ignore")
        ca_cert = x509.load_pem_x509_certificate((pki / "ca.crt").read_bytes())
    ca_key = serialization.load_pem_private_key((pki / "ca.key").read_bytes(), password=None)
    key = ec.generate_private_key(ec.SECP256R1())
    attrs = [x509.NameAttribute(NameOID.COMMON_NAME, common_name)]
    if organization:
        attrs.insert(0, x509.NameAttribute(NameOID.ORGANIZATION_NAME, organization))
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name(attrs))
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=365))
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False)
        .sign(ca_key, hashes.SHA256())  # type: ignore[arg-type]
    )
    out.parent.mkdir(parents=True, exist_ok=True)
    key_file = out.with_suffix(".key")
    key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    key_file.chmod(0o600)
    out.with_suffix(".crt").write_bytes(cert.public_bytes(serialization.Encoding.PEM))


def _kubeconfig(path: Path, server: str, ca: Path, cert: Path, user: str) -> None:
    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": "lab", "cluster": {"server": server, "certificate-authority": str(ca)}}],
        "users": [
            {
                "name": user,
                "user": {
                    "client-certificate": str(cert.with_suffix(".crt")),
                    "client-key": str(cert.with_suffix(".key")),
                },
            }
        ],
        "contexts": [{"name": "lab", "context": {"cluster": "lab", "user": user}}],
        "current-context": "lab",
    }
    path.write_text(json.dumps(config, indent=2))


# --- kubelet and kube-proxy --------------------------------------------------------------------


def kubelet_config(
    net: hosts.Network, name: str, ca: Path, port: int, crash_loop_back_off_max: str = "300s"
) -> dict:
    host = net.host(name)
    return {
        "apiVersion": KUBELET_CONFIG_API,
        "kind": "KubeletConfiguration",
        "address": host.address,
        "port": port,
        "readOnlyPort": 0,
        "healthzBindAddress": "127.0.0.1",
        "authentication": {
            "anonymous": {"enabled": False},
            "webhook": {"enabled": True},
            "x509": {"clientCAFile": str(ca)},
        },
        "authorization": {"mode": "Webhook"},
        "cgroupDriver": "cgroupfs",
        "cgroupRoot": f"/{cgroups.cgroup_parent(name)}",
        "failCgroupV1": False,
        "failSwapOn": False,
        # Pods with dnsPolicy Default (CoreDNS itself) get this file: the lab's gateway only, where no DNS
        # answers (no upstream DNS in the lab), never this machine's own resolvers.
        "resolvConf": str(containerd.node_dir(name) / "resolv.conf"),
        "containerRuntimeEndpoint": f"unix://{containerd.socket_path(name)}",
        "clusterDomain": hosts.CLUSTER_DOMAIN,
        "clusterDNS": [hosts.cluster_dns_ip(str(net.service_cidr))],
        "serializeImagePulls": False,
        "registerNode": True,
        # This machine's disk stats are unreadable to cAdvisor ("cannot find filesystem info for device"):
        # evict on memory only.
        "evictionHard": {"memory.available": "100Mi"},
        "localStorageCapacityIsolation": False,
        "imageGCHighThresholdPercent": 100,
        "imageGCLowThresholdPercent": 99,
        "nodeStatusUpdateFrequency": "5s",
        # One per kubelet: with the shared default /var/log/pods one kubelet's log GC removes the others'.
        "podLogsDir": str(containerd.node_dir(name) / "pod-logs"),
        "shutdownGracePeriod": "0s",
        # A lab timer (settings.toml [nodes]): a crash-looping container restarts every few seconds, not
        # after 10 s doubling up to 5 min, so the crash-loop alert's restart count rises within seconds.
        "crashLoopBackOff": {"maxContainerRestartPeriod": crash_loop_back_off_max},
    }


def _start(name: str, argv: list[str], ready, wait: float = 60) -> processes.Proc:
    try:
        return processes.start(name, argv, dict(os.environ), port=None, wait=wait, ready=ready)
    except processes.ProcessError as exc:
        raise NodeError(str(exc)) from None


def start_containerd(net: hosts.Network, name: str, sandbox_image: str) -> processes.Proc:
    config = containerd.write_config(name, sandbox_image)
    program = shutil.which(containerd.CONTAINERD) or containerd.CONTAINERD
    argv = [*net.host(name).enter(), program, "--config", str(config)]
    return _start(f"node-{name}-containerd", argv, ready=lambda: containerd.ready(name))


def start_kubelet(
    net: hosts.Network, name: str, pki: Path, server: str, port: int, crash_loop_back_off_max: str
) -> processes.Proc:
    d = containerd.node_dir(name)
    _client_cert(pki, d / "pki" / "kubelet-client", f"system:node:{name}", "system:nodes")
    _kubeconfig(d / "kubelet.kubeconfig", server, pki / "ca.crt", d / "pki" / "kubelet-client", name)
    (d / "resolv.conf").write_text(f"nameserver {net.gateway}\n")
    config = d / "kubelet.yaml"
    text = json.dumps(kubelet_config(net, name, pki / "ca.crt", port, crash_loop_back_off_max), indent=2)
    if not config.exists() or config.read_text() != text:
        config.write_text(text)
        processes.stop(f"node-{name}-kubelet")  # a running kubelet does not reread its configuration
    cgroups.ensure_cgroups(name)
    kubelet = build.bin_dir("kubernetes-node") / "kubelet"
    argv = [
        *net.host(name).enter(),
        str(kubelet),
        f"--config={config}",
        f"--kubeconfig={d / 'kubelet.kubeconfig'}",
        f"--root-dir={d / 'kubelet'}",
        f"--cert-dir={d / 'pki'}",
        f"--hostname-override={name}",
        f"--node-ip={net.host(name).address}",
        "--v=1",
    ]
    if name == "k8s-master":
        argv.append("--register-with-taints=node-role.kubernetes.io/control-plane=:NoSchedule")
    return _start(f"node-{name}-kubelet", argv, ready=lambda: _kubelet_healthy(net, name))


def _kubelet_healthy(net: hosts.Network, name: str) -> bool:
    probe = subprocess.run(
        [*net.host(name).enter(), "bash", "-c", "exec 3<>/dev/tcp/127.0.0.1/10248"],
        capture_output=True,
        timeout=5,
    )
    return probe.returncode == 0


def start_kube_proxy(net: hosts.Network, name: str, pki: Path, server: str) -> processes.Proc:
    d = containerd.node_dir(name)
    _client_cert(pki, d / "pki" / "kube-proxy", "system:kube-proxy", None)
    _kubeconfig(d / "kube-proxy.kubeconfig", server, pki / "ca.crt", d / "pki" / "kube-proxy", "kube-proxy")
    host = net.host(name)
    config = {
        "apiVersion": "kubeproxy.config.k8s.io/v1alpha1",
        "kind": "KubeProxyConfiguration",
        "clientConnection": {"kubeconfig": str(d / "kube-proxy.kubeconfig")},
        "hostnameOverride": name,
        "bindAddress": host.address,
        "healthzBindAddress": f"{host.address}:10256",
        "metricsBindAddress": f"{host.address}:10249",
        "mode": "iptables",
        "clusterCIDR": str(net.cluster_cidr),
        # Pods reach a Service whose endpoint sits on their own bridge without br_netfilter: SNAT makes the
        # reply come back through the node's stack.
        "iptables": {"masqueradeAll": True, "localhostNodePorts": False},
        "conntrack": {"maxPerCore": 0},
        "nodePortAddresses": [f"{host.address}/32"],
    }
    path = d / "kube-proxy.yaml"
    path.write_text(json.dumps(config, indent=2))
    proxy = build.bin_dir("kubernetes-node") / "kube-proxy"
    argv = [*host.enter(), str(proxy), f"--config={path}", "--v=1"]
    return _start(f"node-{name}-kube-proxy", argv, ready=lambda: _listening(host, 10256))


def _listening(host: hosts.Host, port: int) -> bool:
    probe = subprocess.run(
        [*host.enter(), "bash", "-c", f"exec 3<>/dev/tcp/{host.address}/{port}"],
        capture_output=True,
        timeout=5,
    )
    return probe.returncode == 0


def service_programmed(name: str, cluster_ip: str, port: int, endpoints: list[str]) -> waits.Check:
    """Whether kube-proxy on host ``name`` has written the NAT rules that send ``cluster_ip:port`` to every
    one of ``endpoints`` (pod IPs): it syncs a new Service and its EndpointSlice some time after the pods
    are Ready, and until then a connection to the cluster IP from that host goes nowhere."""
    rules = subprocess.run(
        [*hosts.network().host(name).enter(), "iptables-save", "-t", "nat"],
        capture_output=True,
        text=True,
        timeout=30,
    ).stdout
    service = any(f"-d {cluster_ip}/32" in line and f"--dport {port}" in line for line in rules.splitlines())
    missing = [ip for ip in endpoints if f"--to-destination {ip}:{port}" not in rules]
    detail = f"kube-proxy on {name}: rule for {cluster_ip}:{port} {'written' if service else 'not yet'}, "
    detail += f"endpoints not yet written: {missing}" if missing else "every endpoint written"
    return waits.succeeded(detail) if service and not missing else waits.pending(detail)


# --- teardown ----------------------------------------------------------------------------------


def unmount_under(*roots: Path) -> list[str]:
    """Lazily unmount every mount point below ``roots`` (kubelet's bind mounts, overlay rootfs, netns)."""
    targets = []
    for line in Path("/proc/self/mountinfo").read_text().splitlines():
        point = line.split()[4].replace("\\040", " ")
        if any(point == str(r) or point.startswith(f"{r}/") for r in roots):
            targets.append(point)
    for point in sorted(targets, key=len, reverse=True):
        subprocess.run(["umount", "-l", point], capture_output=True, timeout=30)
    return targets


def stop_node(name: str) -> list[str]:
    """Stop one node and remove everything it made but its host. Returns what was stopped or removed."""
    done = []
    node, state = containerd.node_dir(name), containerd.state_dir(name)
    for daemon in ("kube-proxy", "kubelet"):
        if processes.stop(f"node-{name}-{daemon}"):
            done.append(f"node-{name}-{daemon}")
    netns: list[Path] = []
    if containerd.ready(name):
        netns = containerd.sandbox_netns(name)
        containerd.kill_tasks(name)
    if processes.stop(f"node-{name}-containerd"):
        done.append(f"node-{name}-containerd")
    containerd.kill_shims(name)
    leftovers = _node_processes(name)  # anything of this node no record names (an interrupted start)
    processes.kill(leftovers, signal.SIGKILL)
    done += [f"process {pid} {argv0}" for pid, argv0 in leftovers.items()]
    done += [f"mount {m}" for m in unmount_under(node, state, *netns)]
    for path in netns:
        with contextlib.suppress(OSError):
            path.unlink()
    done += [f"cgroup {c}" for c in cgroups.remove_cgroups(name)]
    shutil.rmtree(state, ignore_errors=True)
    shutil.rmtree(node, ignore_errors=True)
    return done


def down(net: hosts.Network) -> list[str]:
    done = []
    for host in net.hosts:
        done += stop_node(host.name)
    for root in (containerd.RUN_ROOT, containerd.home()):
        with contextlib.suppress(OSError):
            root.rmdir()  # only when empty: nothing of another lab's is removed
    return done + hosts.remove(net)


def leftovers(net: hosts.Network) -> list[str]:
    """Anything of the real nodes still on this machine: processes, mounts, cgroups, dirs, network."""
    found = []
    for host in net.hosts:
        name = host.name
        found += [f"process {pid} {argv0}" for pid, argv0 in _node_processes(name).items()]
        found += [f"cgroup {c}" for c in cgroups.present(name)]
        for d in (containerd.node_dir(name), containerd.state_dir(name)):
            if d.exists():
                found.append(f"dir {d}")
    # containerd's CRI names its pods' network namespaces cni-<uuid>; nothing else here runs a CRI runtime.
    found += [f"netns {p.name}" for p in sorted(hosts.NETNS_DIR.glob("cni-*"))]
    mounts = Path("/proc/self/mountinfo").read_text()
    for root in (containerd.home(), containerd.RUN_ROOT):
        if f" {root}/" in mounts:
            found.append(f"mounts under {root}")
    return found + hosts.leftovers(net)


def _node_processes(name: str) -> dict[int, str]:
    """{pid: program} of every process with the node's directories in its arguments."""
    markers = [str(containerd.node_dir(name)), str(containerd.state_dir(name))]
    found = processes.find(lambda argv: any(m in "\0".join(argv) for m in markers))
    return {pid: argv[0] for pid, argv in found.items()}


# --- the whole data plane ----------------------------------------------------------------------

ROLE_LABELS = {
    "k8s-master": {
        "node-role.kubernetes.io/control-plane": "",
        "node.kubernetes.io/exclude-from-external-load-balancers": "",
    },
    "k8s-worker1": {"node-role.kubernetes.io/worker": ""},
    "k8s-worker2": {"node-role.kubernetes.io/worker": ""},
}


def pod_cidrs(kubectl: Callable[..., str], names: list[str]) -> dict[str, str]:
    listed = json.loads(kubectl("get", "nodes", "-o", "json"))
    found = {n["metadata"]["name"]: n.get("spec", {}).get("podCIDR") for n in listed["items"]}
    return {name: found[name] for name in names if found.get(name)}


def ensure(
    net: hosts.Network,
    pki: Path,
    server: str,
    kubectl: Callable[..., str],
    settings: dict,
    timeout: float,
) -> None:
    """Start every node's containerd, kubelet and kube-proxy (each left alone when it already runs),
    give each node its bridge network once the controller-manager has given it a pod range."""
    names = [h.name for h in net.hosts]
    for name in names:
        start_containerd(net, name, settings["sandbox_image"])
    for name in names:
        start_kubelet(net, name, pki, server, settings["kubelet_port"], settings["crash_loop_back_off_max"])

    def pod_ranges() -> waits.Check:
        cidrs = pod_cidrs(kubectl, names)
        if missing := sorted(set(names) - set(cidrs)):
            return waits.pending(
                f"none yet for {', '.join(missing)} (kubelet logs under {processes.PLATFORM / 'logs'})"
            )
        return waits.succeeded(value=cidrs)

    waited = waits.until(pod_ranges, timeout=timeout, what="pod ranges", interval=0.5, error=NodeError)
    cidrs: dict[str, str] = waited.check.value  # type: ignore[assignment]
    for name, cidr in cidrs.items():
        containerd.write_cni(name, cidr)
    hosts.ensure_pod_routes(net, cidrs)
    for name, labels in ROLE_LABELS.items():
        kubectl("label", "node", name, "--overwrite", *(f"{k}={v}" for k, v in labels.items()))
    for name in names:
        start_kube_proxy(net, name, pki, server)


def process_names(host: hosts.Host) -> list[str]:
    return [f"node-{host.name}-{daemon}" for daemon in ("containerd", "kubelet", "kube-proxy")]
