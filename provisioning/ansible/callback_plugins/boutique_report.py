"""Writes what a playbook run did to the JSON file named by BOUTIQUE_ANSIBLE_REPORT (the suite reads it:
provisioning/playbooks.py), beside the default callback's output: per host the recap counts, the names of
the tasks that changed something, and each failure with its message."""

from __future__ import annotations

import json
import os

from ansible.plugins.callback import CallbackBase

DOCUMENTATION = """
name: boutique_report
type: aggregate
short_description: the suite's JSON record of a playbook run
description: Writes recap counts, changed tasks and failures to $BOUTIQUE_ANSIBLE_REPORT.
requirements: [BOUTIQUE_ANSIBLE_REPORT set to a writable path]
"""


class CallbackModule(CallbackBase):
    CALLBACK_VERSION = 2.0
    CALLBACK_TYPE = "aggregate"
    CALLBACK_NAME = "boutique_report"
    CALLBACK_NEEDS_ENABLED = True

    def __init__(self) -> None:
        super().__init__()
        self.changed: dict[str, list[str]] = {}
        self.failures: list[dict[str, str]] = []

    def v2_runner_on_ok(self, result) -> None:
        if result._result.get("changed"):
            self.changed.setdefault(result._host.get_name(), []).append(result._task.get_name())

    def v2_runner_item_on_ok(self, result) -> None:
        if result._result.get("changed"):
            name = f"{result._task.get_name()} ({self._get_item_label(result._result)})"
            self.changed.setdefault(result._host.get_name(), []).append(name)

    def v2_runner_on_failed(self, result, ignore_errors: bool = False) -> None:
        if not ignore_errors:
            self._failure(result)

    def v2_runner_on_unreachable(self, result) -> None:
        self._failure(result)

    def _failure(self, result) -> None:
        message = result._result.get("msg") or result._result.get("stderr") or ""
        self.failures.append(
            {"host": result._host.get_name(), "task": result._task.get_name(), "message": str(message)[:500]}
        )

    def v2_playbook_on_stats(self, stats) -> None:
        path = os.environ.get("BOUTIQUE_ANSIBLE_REPORT")
        if not path:
            return
        recap = {host: stats.summarize(host) for host in sorted(stats.processed)}
        with open(path, "w") as out:
            record = {"stats": recap, "changed_tasks": self.changed, "failures": self.failures}
            json.dump(record, out, indent=1)
