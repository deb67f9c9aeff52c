"""gitops-repo as the scenarios see it: its head commit, and commits that change files (always reverted)."""

from __future__ import annotations

import re
import subprocess
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

import yaml


class RepoUnavailable(Exception):
    """The target's gitops-repo cannot be read or written by the suite yet."""


SUITE_TRAILER = "Boutique-Suite-Change: true"
_BUMP_COMMIT = re.compile(r"GITOPS_COMMIT=([0-9a-f]{40})")  # what app-repo's ci/update-gitops.sh prints


def bump_commit_in(log: str) -> str | None:
    """The gitops-repo commit a bump job's log names (its last), on every CI that runs the job."""
    found = _BUMP_COMMIT.findall(log)
    return found[-1] if found else None


HISTORY = 50  # how far back restore looks for the last commit that is not the suite's


@dataclass
class RemoteGitopsRepo:
    """A repository over HTTPS (gitops-repo or app-repo on GitLab on-prem; the lab's git server for reading),
    changed the way a person would: clone, edit, commit, push.

    Every commit the suite makes carries ``SUITE_TRAILER``; ``restore`` gives main the tree of the newest
    commit that does not, so a run killed mid-scenario is undone by the next one without any state of its
    own (a person's commit made on top of the suite's is kept, and with it what the suite changed).
    """

    url: str
    env: dict[str, str] = field(repr=False)  # carries the token (git's environment config)
    name: str = "gitops-repo"

    def _git(self, *args: str, cwd: Path | None = None) -> str:
        proc = subprocess.run(
            ["git", *args], cwd=cwd, env=self.env, capture_output=True, text=True, timeout=120
        )
        if proc.returncode != 0:
            raise RepoUnavailable(f"git {args[0]} of {self.name} failed: {proc.stderr.strip()[-300:]}")
        return proc.stdout

    def head(self) -> str:
        return self._git("ls-remote", self.url, "refs/heads/main").split()[0]

    def tree(self) -> str:
        with self._clone(depth=1) as work:
            return self._git("rev-parse", "HEAD^{tree}", cwd=work).strip()

    def commit(self, edits: dict[str, Callable[[str], str]], message: str) -> str:
        with self._clone(depth=1) as work:
            for relative, edit in edits.items():
                path = work / relative
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_text(edit(path.read_text() if path.exists() else ""))
            return self._push(work, message)

    def restore(self) -> str:
        with self._clone(depth=HISTORY) as work:
            log = self._git("log", "--format=%H %(trailers:key=Boutique-Suite-Change,valueonly)", cwd=work)
            base = next((line.split()[0] for line in log.splitlines() if len(line.split()) == 1), None)
            if base is None:
                raise RepoUnavailable(
                    f"no commit of {self.name}'s last {HISTORY} is a person's: restore by hand"
                )
            self._git("rm", "-r", "-q", "--ignore-unmatch", ".", cwd=work)
            self._git("checkout", base, "--", ".", cwd=work)
            return self._push(work, f"restore {self.name} to {base[:12]} after a scenario")

    def _push(self, work: Path, message: str) -> str:
        self._git("add", "-A", cwd=work)
        if not self._git("status", "--porcelain", cwd=work).strip():
            return self._git("rev-parse", "HEAD", cwd=work).strip()  # nothing to change
        identity = ["-c", "user.name=boutique-suite", "-c", "user.email=boutique-suite@localhost"]
        self._git(*identity, "commit", "-q", "-m", message, "-m", SUITE_TRAILER, cwd=work)
        self._git("push", "-q", "origin", "HEAD:main", cwd=work)
        return self._git("rev-parse", "HEAD", cwd=work).strip()

    def checkout(self, commit: str, dest: Path) -> Path:
        """A clone with main at ``commit`` (so a CI job sees CI_COMMIT_BRANCH main and that SHA)."""
        self._git("clone", "-q", self.url, str(dest))
        self._git("checkout", "-q", "-B", "main", commit, cwd=dest)
        return dest

    def commits_between(self, old: str, new: str) -> list[str]:
        with self._clone(depth=HISTORY) as work:
            return self._git("rev-list", f"{old}..{new}", cwd=work).split()

    def show(self, commit: str, path: str) -> dict[str, object]:
        """``commit`` as the server has it: message, author, parents, changed files, its diff, and ``path``'s
        content there and in its first parent."""
        with self._clone(depth=HISTORY) as work:
            parents = self._git("rev-list", "--parents", "-n", "1", commit, cwd=work).split()[1:]
            return {
                "sha": commit,
                "message": self._git("log", "-1", "--format=%B", commit, cwd=work).strip(),
                "author": self._git("log", "-1", "--format=%an <%ae> %aI", commit, cwd=work).strip(),
                "parents": parents,
                "files": self._git(
                    "diff-tree", "--no-commit-id", "--name-only", "-r", commit, cwd=work
                ).split(),
                "diff": self._git("show", "--format=", commit, cwd=work),
                "content": self._git("show", f"{commit}:{path}", cwd=work),
                "parent_content": self._git("show", f"{parents[0]}:{path}", cwd=work) if parents else "",
            }

    @contextmanager
    def _clone(self, depth: int) -> Iterator[Path]:
        with tempfile.TemporaryDirectory(prefix=f"{self.name}-") as tmp:
            work = Path(tmp) / self.name
            self._git("clone", "-q", f"--depth={depth}", "--branch=main", self.url, str(work))
            yield work


class Repo(Protocol):
    """gitops-repo as the target serves it (GitLab's on-prem, the lab's git server): four operations."""

    def head(self) -> str: ...
    def tree(self) -> str: ...
    def commit(self, edits: dict[str, Callable[[str], str]], message: str) -> str: ...
    def restore(self) -> str: ...


def set_image_tag(image: str, tag: str) -> Callable[[str], str]:
    """An edit of a kustomization.yaml: the ``images:`` entry for ``image`` gets ``newTag: tag``."""

    def edit(text: str) -> str:
        doc = yaml.safe_load(text)
        entries = [i for i in doc.get("images", []) if i.get("name") == image]
        assert entries, f"kustomization has no images entry for {image}"
        entries[0]["newTag"] = tag
        return yaml.safe_dump(doc, sort_keys=False)

    return edit


def annotate_configmap(name: str, key: str, value: str) -> Callable[[str], str]:
    """An edit of a multi-document YAML file: the ConfigMap ``name`` gets annotation ``key: value``."""

    def edit(text: str) -> str:
        docs = [d for d in yaml.safe_load_all(text) if d]
        found = [d for d in docs if d.get("kind") == "ConfigMap" and d["metadata"]["name"] == name]
        assert found, f"no ConfigMap {name} in the file"
        found[0]["metadata"].setdefault("annotations", {})[key] = value
        return yaml.safe_dump_all(docs, sort_keys=False)

    return edit


def set_env(deployment: str, name: str, value: str, container: str = "server") -> Callable[[str], str]:
    """An edit of a kustomization.yaml: a patch that sets ``name=value`` in the environment of
    ``container`` of Deployment ``deployment`` (a strategic merge: other variables stay)."""
    patch = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": deployment},
        "spec": {
            "template": {
                "spec": {"containers": [{"name": container, "env": [{"name": name, "value": value}]}]}
            }
        },
    }

    def edit(text: str) -> str:
        doc = yaml.safe_load(text)
        doc.setdefault("patches", []).append({"patch": yaml.safe_dump(patch, sort_keys=False)})
        return yaml.safe_dump(doc, sort_keys=False)

    return edit
