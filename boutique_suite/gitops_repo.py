"""gitops-repo as the scenarios see it: its head commit, and commits that change files (always reverted)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import yaml

from boutique_suite.targets import Target


class RepoUnavailable(Exception):
    """The target's gitops-repo cannot be read or written by the suite yet."""


@dataclass
class GitopsRepo:
    """The lab's gitops-repo on its git server (on-prem goes through GitLab's API with issue #7)."""

    def head(self) -> str:
        from provisioning.lab import gitserver

        server = gitserver.running()
        if server is None:
            raise RepoUnavailable("the lab git server is not running")
        return gitserver.head(server, "gitops-repo")

    def tree(self) -> str:
        """The tree hash of main: what gitops-repo holds, whatever commits led there."""
        from provisioning.lab import gitserver

        server = gitserver.running()
        if server is None:
            raise RepoUnavailable("the lab git server is not running")
        return gitserver.tree(server, "gitops-repo")

    def commit(self, edits: dict[str, Callable[[str], str]], message: str) -> str:
        """Commit the suite's gitops content with ``edits`` ({path: text -> text}); returns the SHA."""
        from provisioning.lab import boutique, gitserver

        server = gitserver.running()
        if server is None:
            raise RepoUnavailable("the lab git server is not running")
        return boutique.publish_gitops_content(server, edits=edits, message=message)

    def restore(self) -> str:
        """Back to the suite's gitops content (what the layer published): a new commit if anything differs."""
        return self.commit({}, "restore gitops-repo after a scenario")


def gitops_repo(target: Target) -> GitopsRepo:
    if not target.is_lab:
        raise RepoUnavailable("writing gitops-repo on GitLab comes with issue #7")
    return GitopsRepo()


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
