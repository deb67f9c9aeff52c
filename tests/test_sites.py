"""The target adapter: the site is chosen by the target's kind (an unknown kind is one clear error), made
once per target, and answers what differs between the lab and on-prem without a cluster where it can.
The library, the layers and conftest.py never ask the kind, and boutique_suite imports no lab module."""

from __future__ import annotations

import ast
import inspect
from pathlib import Path
from types import SimpleNamespace

import pytest

from boutique_suite.actions import sealing
from boutique_suite.clients import gitops_repo
from boutique_suite.context import sites
from boutique_suite.expectations import repos
from boutique_suite.run import targets
from provisioning import phase2_cluster, phase5_cicd
from provisioning.lab import build, recipes, site_repos
from provisioning.lab import site as lab_site
from provisioning.lab.services import catalog, gitserver, pipeline
from provisioning.lab.site import LabSite
from provisioning.layer import LayerUnavailable
from provisioning.onprem_site import OnPremSite

ROOT = Path(__file__).resolve().parent.parent
LAB = targets.load("lab")
ONPREM = targets.load("onprem.example")


# --- choosing the implementation ---------------------------------------------------------------------


def test_each_kind_has_its_implementation() -> None:
    assert sites.implementation("lab") is LabSite
    assert sites.implementation("onprem") is OnPremSite
    assert type(sites.site_for(LAB)) is LabSite and type(sites.site_for(ONPREM)) is OnPremSite


def test_an_unknown_kind_is_one_clear_error() -> None:
    with pytest.raises(
        sites.SiteError, match=r"no site implementation for target kind 'cloud' \(known kinds: lab, onprem\)"
    ):
        sites.implementation("cloud")


def test_a_table_entry_that_does_not_load_says_which(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sites.IMPLEMENTATIONS, "lab", "provisioning.lab.site:NoSuchSite")
    with pytest.raises(sites.SiteError, match=r"cannot load provisioning\.lab\.site:NoSuchSite"):
        sites.implementation("lab")


def test_the_site_is_made_once_per_target() -> None:
    target = targets.load("lab")
    site = sites.site_for(target)
    assert sites.site_for(target) is site and site.target is target
    copy = target.model_copy(update={"name": "other-lab"})
    assert sites.site_for(copy) is not site and sites.site_for(copy).target is copy
    assert sites.site_for(targets.load("lab")) is not site


@pytest.mark.parametrize("cls", [LabSite, OnPremSite])
def test_every_implementation_answers_the_whole_interface(cls: type) -> None:
    wanted = {
        name
        for name, value in vars(sites.Site).items()
        if not name.startswith("_") and (inspect.isfunction(value) or name in sites.Site.__annotations__)
    }
    missing = sorted(name for name in wanted if not hasattr(cls(ONPREM if cls is OnPremSite else LAB), name))
    assert not missing, f"{cls.__name__} lacks {missing}"
    assert isinstance(cls(LAB), sites.Site)


# --- nobody else asks the kind, and the library imports no lab module ----------------------------------


def _imports(path: Path) -> list[str]:
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module:
            found += [node.module] + [f"{node.module}.{alias.name}" for alias in node.names]
    return found


def test_boutique_suite_imports_no_lab_module() -> None:
    offenders = {
        str(path.relative_to(ROOT)): [name for name in _imports(path) if name.startswith("provisioning.lab")]
        for path in sorted((ROOT / "boutique_suite").rglob("*.py"))
    }
    assert {k: v for k, v in offenders.items() if v} == {}


def test_nothing_outside_the_sites_asks_which_kind_of_target_it_is() -> None:
    files = [
        *(ROOT / "boutique_suite").rglob("*.py"),
        *(ROOT / "provisioning").glob("phase*.py"),
        *(ROOT / "steps").glob("*.py"),
    ]
    asking = [
        f"{path.relative_to(ROOT)}:{n}"
        for path in [*files, ROOT / "conftest.py"]
        if path.name not in ("targets.py", "sites.py")  # the target file's schema and the table of kinds
        for n, line in enumerate(path.read_text().splitlines(), 1)
        if ".is_lab" in line or 'kind == "lab"' in line
    ]
    assert asking == []


# --- layers --------------------------------------------------------------------------------------------


def test_the_lab_builds_its_cluster_without_the_platform_layer() -> None:
    assert phase2_cluster.needs(ONPREM) == (0, 1)
    assert phase2_cluster.needs(LAB) == (0,)
    assert [sites.site_for(LAB).layer_needs(p) for p in (3, 4, 5)] == [(1, 2), (3,), (1, 4)]


def test_an_onprem_target_without_gitlab_has_no_layer_5() -> None:
    without = ONPREM.model_copy(update={"gitlab": None})
    with pytest.raises(
        LayerUnavailable, match=r"layer 5 \(CI/CD\) not provisioned: .* has no gitlab section"
    ):
        phase5_cicd.check(without)


# --- what each site says it lacks (the steps' skip reasons) --------------------------------------------


def test_skip_reasons_and_capabilities(monkeypatch: pytest.MonkeyPatch) -> None:
    lab, onprem = sites.site_for(LAB), sites.site_for(ONPREM)
    assert lab.onprem_only_missing() == lab_site.ONPREM_ONLY and onprem.onprem_only_missing() is None
    monkeypatch.setattr(pipeline, "unrunnable_jobs", lambda: {"build": "no buildkitd"})
    assert lab.registry_lookup_missing() == lab_site.NO_REGISTRY  # the lab's own tag, read back: not a check
    monkeypatch.setattr(pipeline, "unrunnable_jobs", dict)
    assert lab.registry_lookup_missing() is None  # the tag the lab's push job pushed
    assert onprem.registry_lookup_missing() is None
    assert lab.app_repo_sources_missing() == lab_site.APP_REPO_NO_SOURCES
    assert onprem.app_repo_sources_missing() is None
    assert lab.ingress_controller_missing() == lab_site.INGRESS_NOT_IN_LAB
    assert onprem.ingress_controller_missing() is None and onprem.metallb_missing() is None
    assert lab.pipelines_missing() is None and onprem.pipelines_missing() is None
    no_gitlab = sites.site_for(ONPREM.model_copy(update={"gitlab": None}))
    assert no_gitlab.pipelines_missing() == f"{ONPREM.source} has no gitlab section"
    assert (lab.standin_storefront, lab.local_slack) == (True, True)
    assert (onprem.standin_storefront, onprem.local_slack) == (False, False)
    assert (lab.git_server, onprem.git_server) == ("the lab git server", "GitLab")


def test_onprem_pipelines_need_the_gitlab_token(monkeypatch: pytest.MonkeyPatch) -> None:
    from provisioning.gitlab_platform import GitLabUnavailable

    assert ONPREM.gitlab is not None
    monkeypatch.delenv(ONPREM.gitlab.token_env, raising=False)
    with pytest.raises(GitLabUnavailable, match=f"{ONPREM.gitlab.token_env} is not set"):
        sites.site_for(ONPREM).pipelines()


def test_lab_unrunnable_jobs_name_the_job_and_why(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(pipeline, "unrunnable_jobs", lambda: {"build": "no container engine"})
    ci = site_repos.LabPipelines(git=None)  # type: ignore[arg-type]
    assert ci.unrunnable(["test", "build"]) == 'job cannot run on the lab: "build": no container engine'
    assert ci.unrunnable(["test"]) is None


# --- repositories -----------------------------------------------------------------------------------


def test_onprem_git_remote_is_gitlab_with_the_token_in_the_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    assert ONPREM.gitlab is not None
    monkeypatch.setenv(ONPREM.gitlab.token_env, "glpat-" + "y" * 8)
    url, env = sites.site_for(ONPREM).git_remote("gitops-repo")
    assert url == "https://gitlab.local/boutique/gitops-repo.git" and "glpat" not in url
    config = {
        env[f"GIT_CONFIG_KEY_{n}"]: env[f"GIT_CONFIG_VALUE_{n}"] for n in range(int(env["GIT_CONFIG_COUNT"]))
    }
    assert config["http.extraHeader"] == "PRIVATE-TOKEN: glpat-yyyyyyyy"
    assert isinstance(sites.gitops_repo(ONPREM), gitops_repo.RemoteGitopsRepo)


def test_onprem_git_remote_without_token_is_unavailable(monkeypatch: pytest.MonkeyPatch) -> None:
    assert ONPREM.gitlab is not None
    monkeypatch.delenv(ONPREM.gitlab.token_env, raising=False)
    with pytest.raises(gitops_repo.RepoUnavailable, match="GITLAB_TOKEN is not set"):
        sites.gitops_repo(ONPREM)


def test_lab_repositories_need_its_git_server(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(gitserver, "running", lambda: None)
    with pytest.raises(AssertionError, match="the lab git server is not running"):
        repos.remote(LAB, "app-repo")
    with pytest.raises(gitops_repo.RepoUnavailable, match="the lab git server is not running"):
        sites.gitops_repo(LAB).head()


# --- Argo CD ------------------------------------------------------------------------------------------


class _Apps:
    """The apps/v1 calls the on-prem controller switch makes, recorded."""

    def __init__(self, replicas: int) -> None:
        self.calls: list[tuple] = []
        self.replicas = replicas

    def read_namespaced_stateful_set(self, name: str, ns: str) -> SimpleNamespace:
        self.calls.append(("read", name, ns))
        spec, status = SimpleNamespace(replicas=self.replicas), SimpleNamespace(ready_replicas=self.replicas)
        return SimpleNamespace(spec=spec, status=status)

    def patch_namespaced_stateful_set_scale(self, name: str, ns: str, body: dict) -> None:
        self.calls.append(("scale", name, ns, body["spec"]["replicas"]))


def test_onprem_controller_is_the_statefulset_in_argo_cds_namespace() -> None:
    target = ONPREM.model_copy(update={"argocd": ONPREM.argocd.model_copy(update={"namespace": "gitops"})})  # type: ignore[union-attr]
    site, apps = sites.site_for(target), _Apps(replicas=2)
    kube = SimpleNamespace(apps=apps)
    assert site.controller_replicas(kube) == 2 and site.controller_running(kube)  # type: ignore[arg-type]
    site.start_controller(kube, 2)  # type: ignore[arg-type]
    assert apps.calls[-1] == ("scale", "argocd-application-controller", "gitops", 2)


def test_both_sites_switch_argo_cds_controller_through_the_same_functions(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The lab runs install.yaml's Argo CD in its cluster: its controller is a StatefulSet, as on-prem."""
    from boutique_suite.expectations import argocd_workloads

    calls: list[tuple[str, str]] = []
    monkeypatch.setattr(
        argocd_workloads, "stop_controller", lambda target, kube: calls.append(("stop", target.kind))
    )
    monkeypatch.setattr(argocd_workloads, "controller_replicas", lambda target, kube: 1)
    for target in (LAB, ONPREM):
        site = sites.site_for(target)
        site.stop_controller(None)  # type: ignore[arg-type]
        assert site.controller_replicas(None) == 1  # type: ignore[arg-type]
    assert calls == [("stop", "lab"), ("stop", "onprem")]


# --- images and tools ---------------------------------------------------------------------------------


def test_only_the_lab_publishes_a_stand_in_image_and_says_so(monkeypatch: pytest.MonkeyPatch) -> None:
    published: list[str] = []
    monkeypatch.setattr(catalog, "publish", published.append)
    image = "registry.local/boutique/frontend:abc12345"
    assert sites.site_for(ONPREM).ensure_pullable(image) is None and published == []
    assert sites.site_for(LAB).ensure_pullable(image) == lab_site.LAB_PUSHED and published == [image]


def test_tools_come_from_the_build_cache_on_the_lab_and_path_on_prem(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setattr(build, "bin_dir", lambda name: tmp_path / name / "bin")
    assert sites.site_for(LAB).kubectl_binary() == tmp_path / "kubernetes" / "bin" / "kubectl"
    with pytest.raises(sealing.SealingError, match=r"kubeseal is missing at .*: run `./run setup`"):
        sites.site_for(LAB).kubeseal_binary()
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(AssertionError, match="kubectl is not on PATH"):
        sites.site_for(ONPREM).kubectl_binary()
    kubeseal = tmp_path / "kubeseal"
    kubeseal.write_text("#!/bin/sh\n")
    kubeseal.chmod(0o755)
    assert sites.site_for(ONPREM).kubeseal_binary() == kubeseal


def test_built_tools_follow_the_cache(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setattr(recipes, "CACHE_ROOT", tmp_path)
    tools = sites.built_tools()
    assert tools.cache_root == tmp_path
    directory = tools.directory("opentofu")
    assert directory.parent == tmp_path and tools.built("opentofu") is None
    directory.mkdir()
    (directory / build.MANIFEST).write_text("{}")
    assert tools.built("opentofu") == directory
