"""The one kubectl runner: the suite's library, the lab and the on-prem bootstrap alike.

A ``Kubectl`` is kubectl with one kubeconfig (and context); ``run`` returns its stdout. Every failure is a
KubectlError: kubectl refusing (its own message, first 600 characters) or outliving its timeout. The
timeout convention: ``timeout`` seconds when given; else a command carrying kubectl's own
``--timeout=<N>s`` gets N + GRACE seconds; else TIMEOUT. ``of(target)`` is the target's kubectl.
"""

from __future__ import annotations

import re
import subprocess

import yaml

TIMEOUT = 120.0
GRACE = 30.0
_OWN_TIMEOUT = re.compile(r"^--timeout=(\d+(?:\.\d+)?)s$")


def stream(objects: list[dict]) -> str:
    """``objects`` as one YAML stream for kubectl's stdin, dumped by libyaml where PyYAML has it (its wheels
    do): Argo CD's install.yaml alone takes the pure-Python dumper seconds."""
    return yaml.dump_all(objects, Dumper=getattr(yaml, "CSafeDumper", yaml.SafeDumper))


class KubectlError(Exception):
    """kubectl refused or did not finish; the message is its own, first 600 characters."""


def timeout_for(args: tuple[str, ...] | list[str], timeout: float | None = None) -> float:
    """The seconds a kubectl command may take (see the module's timeout convention)."""
    if timeout is not None:
        return timeout
    for arg in args:
        if match := _OWN_TIMEOUT.match(arg):
            return float(match.group(1)) + GRACE
    return TIMEOUT


class Kubectl:
    """kubectl with one kubeconfig (and context): ``argv`` is the command before kubectl's own arguments."""

    def __init__(self, argv: list[str]) -> None:
        self.argv = argv

    def run(self, *args: str, stdin: str | None = None, timeout: float | None = None) -> str:
        seconds = timeout_for(args, timeout)
        what = f"kubectl {' '.join(args[:2])}"
        try:
            proc = subprocess.run(
                [*self.argv, *args], input=stdin, capture_output=True, text=True, timeout=seconds
            )
        except subprocess.TimeoutExpired:
            raise KubectlError(f"{what}: did not finish in {seconds:g}s") from None
        if proc.returncode != 0:
            raise KubectlError(f"{what}: {proc.stderr.strip()[:600]}")
        return proc.stdout

    def __call__(self, *args: str) -> str:  # a plain callable for modules that take one (nodes.ensure)
        return self.run(*args)
