"""The lab git server's post-receive hook: GitLab's push webhook, so Argo CD hears of a commit when it is
pushed, as it does from GitLab on-prem, instead of on its next poll.

For each ref a push updated, it POSTs GitLab's "Push Hook" event (the fields Argo CD reads: project.web_url,
project.default_branch, ref, before, after, and each commit's added / modified / removed files) to every hook
registered for the repository in the server's ``webhooks.json`` (url and secret token, mode 0600, written by
``gitrepos.add_webhook``), with the token in ``X-Gitlab-Token`` as GitLab sends it. Each delivery is
appended to ``webhook-deliveries.jsonl`` beside it (time, repository, ref, after, url, HTTP status or error:
never the token), like GitLab's "Recent events" of a webhook. A failed delivery never fails the push.

Run by git with the repository as the working directory; stdlib only (git runs it outside the suite's venv).

    post-receive <webhooks.json>     # stdin: "<old> <new> <ref>" lines, as git gives them
"""

from __future__ import annotations

import datetime
import json
import ssl
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path

ZERO = "0" * 40
MAX_COMMITS = 20  # GitLab sends at most 20 commits per push event
TIMEOUT = 10.0


def _git(*args: str) -> str:
    return subprocess.run(["git", *args], capture_output=True, text=True, check=True).stdout


def commit_files(sha: str) -> dict[str, list[str]]:
    """The files one commit added, modified and removed (against its first parent; all added for a root)."""
    files: dict[str, list[str]] = {"added": [], "modified": [], "removed": []}
    out = _git("diff-tree", "--no-commit-id", "--name-status", "-r", "--root", "--no-renames", sha)
    kinds = {"A": "added", "M": "modified", "D": "removed", "T": "modified"}
    for line in out.splitlines():
        status, _, path = line.partition("\t")
        files[kinds.get(status[:1], "modified")].append(path)
    return files


def push_event(repo: str, base_url: str, old: str, new: str, ref: str) -> dict:
    """GitLab's Push Hook payload for one ref update of ``repo`` (a bare repository named ``<repo>.git``)."""
    if new == ZERO:
        shas: list[str] = []  # a deleted branch has no commits
    else:
        span = new if old == ZERO else f"{old}..{new}"
        shas = _git("rev-list", "--reverse", span).split()
    commits = []
    for sha in shas[-MAX_COMMITS:]:
        message, timestamp = _git("show", "-s", "--format=%B%x00%cI", sha).rsplit("\x00", 1)
        commits.append({"id": sha, "message": message, "timestamp": timestamp.strip(), **commit_files(sha)})
    web_url = f"{base_url}/{repo}"
    return {
        "object_kind": "push",
        "event_name": "push",
        "before": old,
        "after": new,
        "ref": ref,
        "checkout_sha": None if new == ZERO else new,
        "project": {
            "name": repo,
            "path_with_namespace": repo,
            "default_branch": "main",
            "web_url": web_url,
            "git_http_url": f"{web_url}.git",
        },
        "commits": commits,
        "total_commits_count": len(shas),
    }


def deliver(url: str, token: str, payload: dict, ca_file: str | None = None) -> str:
    """POST one event (an HTTPS receiver verified against ``ca_file`` when given); returns the HTTP status,
    or what went wrong."""
    request = urllib.request.Request(
        url,
        data=json.dumps(payload).encode(),
        method="POST",
        headers={"Content-Type": "application/json", "X-Gitlab-Event": "Push Hook", "X-Gitlab-Token": token},
    )
    try:
        context = ssl.create_default_context(cafile=ca_file) if ca_file else None
        with urllib.request.urlopen(request, timeout=TIMEOUT, context=context) as answer:
            return str(answer.status)
    except urllib.error.HTTPError as exc:
        return str(exc.code)
    except (OSError, ValueError) as exc:
        return f"error: {exc}"


def main(argv: list[str]) -> int:
    config = Path(argv[1])
    try:
        settings = json.loads(config.read_text())
    except (OSError, ValueError):
        return 0  # no webhook registered
    repo = Path.cwd().name.removesuffix(".git")
    hooks = [h for h in settings.get("hooks", []) if h.get("repo") == repo]
    log = config.with_name("webhook-deliveries.jsonl")
    for line in sys.stdin.read().splitlines():
        old, new, ref = line.split()
        payload = push_event(repo, settings["base_url"], old, new, ref)
        for hook in hooks:
            status = deliver(hook["url"], hook["token"], payload, settings.get("ca_file"))
            print(f"webhook {hook['url']}: {status}", file=sys.stderr)
            record = {
                "at": datetime.datetime.now(datetime.UTC).isoformat(timespec="milliseconds"),
                "repo": repo,
                "ref": ref,
                "after": new,
                "url": hook["url"],
                "status": status,
            }
            with log.open("a") as out:
                out.write(json.dumps(record) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
