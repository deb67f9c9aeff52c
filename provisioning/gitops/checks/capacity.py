"""Capacity: do the prod pods schedule on the schedulable nodes with their requests at HPA minimums, and
what is the headroom (or shortfall) at HPA maximums? First-fit decreasing over each node's allocatable
CPU, memory and pod count, the way the scheduler's resource fit sees it (no other pods counted)."""

from __future__ import annotations

from dataclasses import dataclass, field

from kubernetes.utils import parse_quantity

from provisioning.gitops.checks import Finding, finding


@dataclass
class Node:
    name: str
    cpu: float  # cores
    memory: float  # bytes
    pods: int
    placed: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class Pod:
    owner: dict
    cpu: float
    memory: float


@dataclass
class Result:
    scale: str
    unplaced: list[Pod]
    nodes: list[Node]
    cpu: tuple[float, float]  # requested, allocatable
    memory: tuple[float, float]

    def line(self) -> str:
        cpu_left, mem_left = self.cpu[1] - self.cpu[0], (self.memory[1] - self.memory[0]) / 2**30
        verdict = "every pod fits" if not self.unplaced else f"{len(self.unplaced)} pods do not fit"
        return (
            f"at HPA {self.scale}: requests {self.cpu[0]:.2f} of {self.cpu[1]:.2f} CPU, "
            f"{self.memory[0] / 2**30:.2f} of {self.memory[1] / 2**30:.2f} GiB; "
            f"{'headroom' if cpu_left >= 0 and mem_left >= 0 else 'shortfall'} {cpu_left:.2f} CPU, "
            f"{mem_left:.2f} GiB; {verdict}"
        )


def schedulable_nodes(nodes: list[dict]) -> list[Node]:
    """Nodes from the API (dicts), without the unschedulable and NoSchedule/NoExecute-tainted ones."""
    out = []
    for n in nodes:
        taints = n.get("spec", {}).get("taints") or []
        if n.get("spec", {}).get("unschedulable") or any(
            t["effect"] in ("NoSchedule", "NoExecute") for t in taints
        ):
            continue
        alloc = n["status"]["allocatable"]
        out.append(
            Node(
                n["metadata"]["name"],
                float(parse_quantity(alloc["cpu"])),
                float(parse_quantity(alloc["memory"])),
                int(alloc["pods"]),
            )
        )
    return out


def _replicas(objects: list[dict], scale: str) -> dict[str, int]:
    counts = {
        d["metadata"]["name"]: d["spec"].get("replicas", 1) for d in objects if d["kind"] == "Deployment"
    }
    for h in (o for o in objects if o["kind"] == "HorizontalPodAutoscaler"):
        name = h["spec"]["scaleTargetRef"]["name"]
        if name in counts:
            counts[name] = (
                h["spec"].get("minReplicas", 1) if scale == "minimums" else h["spec"]["maxReplicas"]
            )
    return counts


def pods(objects: list[dict], scale: str) -> list[Pod]:
    counts = _replicas(objects, scale)
    out = []
    for d in (o for o in objects if o["kind"] == "Deployment"):
        req = [
            c.get("resources", {}).get("requests", {}) for c in d["spec"]["template"]["spec"]["containers"]
        ]
        cpu = sum(float(parse_quantity(r.get("cpu", "0"))) for r in req)
        mem = sum(float(parse_quantity(r.get("memory", "0"))) for r in req)
        out += [Pod(d, cpu, mem)] * counts[d["metadata"]["name"]]
    return out


def fit(objects: list[dict], nodes: list[Node], scale: str) -> Result:
    free = [Node(n.name, n.cpu, n.memory, n.pods) for n in nodes]
    unplaced = []
    wanted = pods(objects, scale)
    for pod in sorted(wanted, key=lambda p: (p.cpu, p.memory), reverse=True):
        # most free CPU first: spreads replicas like the scheduler's LeastAllocated scoring
        for node in sorted(free, key=lambda n: n.cpu, reverse=True):
            if pod.cpu <= node.cpu and pod.memory <= node.memory and node.pods >= 1:
                node.cpu, node.memory, node.pods = node.cpu - pod.cpu, node.memory - pod.memory, node.pods - 1
                node.placed.append(pod.owner["metadata"]["name"])
                break
        else:
            unplaced.append(pod)
    total_cpu, total_mem = sum(n.cpu for n in nodes), sum(n.memory for n in nodes)
    return Result(
        scale,
        unplaced,
        free,
        (sum(p.cpu for p in wanted), total_cpu),
        (sum(p.memory for p in wanted), total_mem),
    )


def check(objects: list[dict], nodes: list[Node]) -> tuple[list[Finding], str]:
    """Findings for pods that do not schedule at HPA minimums, and the report at minimums and maximums."""
    at_min, at_max = fit(objects, nodes, "minimums"), fit(objects, nodes, "maximums")
    largest = max(nodes, key=lambda n: n.cpu, default=None)
    findings = [
        finding(
            p.owner,
            "capacity",
            f"a pod requesting {p.cpu:.2f} CPU / {p.memory / 2**20:.0f}Mi fits on none of "
            f"{', '.join(n.name for n in nodes) or 'no schedulable node'}"
            + (f" (largest: {largest.cpu:.2f} CPU / {largest.memory / 2**30:.1f} GiB)" if largest else ""),
        )
        for p in at_min.unplaced
    ]
    return findings, f"{at_min.line()}\n{at_max.line()}"
