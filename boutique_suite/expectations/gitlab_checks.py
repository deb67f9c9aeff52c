"""Phase 1 on-prem: GitLab's health, version, projects and runner, read through its HTTP API."""

from __future__ import annotations

import datetime

import requests

from boutique_suite.run import waits
from boutique_suite.run.targets import Target
from provisioning import gitlab_platform


def ca_file(target: Target) -> str | None:
    return target.gitlab.ca_file if target.gitlab else None


def readiness(url: str, status: str, verify: str | bool) -> waits.Probe:
    """Succeeds when GitLab's readiness endpoint (``?all=1``) reports ``status`` for every check."""

    def probe() -> waits.Check:
        try:
            answer = requests.get(url, params={"all": "1"}, verify=verify, timeout=5)
        except requests.RequestException as exc:
            return waits.pending(f"{url}: {type(exc).__name__}")
        if answer.status_code != 200:
            return waits.pending(f"{url} answered {answer.status_code}")
        body = answer.json()
        checks = {k: v for k, v in body.items() if k.endswith("_check")}
        bad = {
            k: [c.get("status") for c in v]
            for k, v in checks.items()
            if any(c.get("status") != status for c in v)
        }
        if body.get("status") != status or bad or not checks:
            return waits.pending(
                f"{url}: status {body.get('status')!r}, checks not {status!r}: {bad or 'none'}"
            )
        return waits.succeeded(f"{url}: {sorted(checks)} all {status}")

    return probe


def expect_ready(target: Target, url: str, status: str, seconds: int) -> None:
    waits.until(readiness(url, status, ca_file(target) or True), timeout=seconds, what=f"{url} {status}")


def expect_version(target: Target, path: str) -> str:
    assert target.gitlab and target.gitlab.version, "the target file pins no GitLab version (gitlab.version)"
    gl, _ = gitlab_platform.from_target(target)
    answer = gl.http_get(path.removeprefix("/api/v4"))
    assert isinstance(answer, dict), f"{path} answered {answer!r}"
    assert answer.get("version", "").split("-")[0] == target.gitlab.version, (
        f"GitLab answers version {answer.get('version')!r}, the target file pins {target.gitlab.version!r}"
    )
    return answer["version"]


def expect_group_projects(target: Target, group: str, *projects: str) -> None:
    gl, _ = gitlab_platform.from_target(target)
    have = {p.path for p in gl.groups.get(group).projects.list(get_all=True)}
    missing = sorted(set(projects) - have)
    assert not missing, f"group {group} lacks {missing} (it holds {sorted(have)})"


def project_runner(target: Target, project: str, tag: str) -> dict:
    """The runner registered for ``group/project`` with ``tag``, with its details (status, paused,
    contacted_at)."""
    gl, spec = gitlab_platform.from_target(target)
    found = gl.projects.get(f"{spec.group}/{project}").runners.list(tag_list=tag, get_all=True)
    assert found, f"no runner with the tag {tag!r} is registered for {spec.group}/{project}"
    return dict(gl.runners.get(found[0].id).attributes)


def expect_runner_status(runner: dict, status: str) -> None:
    assert runner.get("status") == status, (
        f"runner {runner.get('id')} is {runner.get('status')!r}, not {status!r}"
    )
    assert not runner.get("paused"), f"runner {runner.get('id')} is paused"


def expect_contacted_within(runner: dict, seconds: int) -> float:
    contacted = runner.get("contacted_at")
    assert contacted, f"runner {runner.get('id')} never contacted GitLab"
    at = datetime.datetime.fromisoformat(contacted.replace("Z", "+00:00"))
    age = (datetime.datetime.now(datetime.UTC) - at).total_seconds()
    assert age <= seconds, (
        f"runner {runner.get('id')} last contacted GitLab {age:.0f} s ago, over {seconds} s"
    )
    return age
