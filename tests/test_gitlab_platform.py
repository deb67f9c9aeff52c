"""Phase 1 on GitLab (provisioning/gitlab_platform.py, python-gitlab) against a loopback fake that speaks
the part of GitLab's REST API v4 it uses: everything is created on the first run, the second run changes
nothing (no POST, PUT or DELETE), tokens land only in masked CI/CD variables, a lost token is rotated, and
an unreachable or refusing GitLab is one clear error."""

from __future__ import annotations

import itertools
import json
import logging
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

import pytest

from boutique_suite.run import targets
from provisioning import gitlab_platform, phase1_platform
from provisioning.layer import LayerUnavailable

TOKEN = "fake-admin-token"  # the fake GitLab's own admin token


class FakeGitLab:
    """State of the fake: groups, projects and their sub-objects, and every mutating request."""

    def __init__(self) -> None:
        self.ids = itertools.count(1)
        self.groups: dict[str, dict[str, Any]] = {}
        self.projects: dict[str, dict[str, Any]] = {}
        self.children: dict[tuple[str, int, str], dict[str, dict[str, Any]]] = {}
        self.mutations: list[str] = []
        self.hook_tokens: dict[str, str | None] = {}  # hook id -> its secret token (never in an answer)

    def items(self, owner: str, oid: int, kind: str) -> dict[str, dict[str, Any]]:
        return self.children.setdefault((owner, oid, kind), {})

    def all(self, kind: str) -> list[dict[str, Any]]:
        return [item for (_, _, k), items in self.children.items() if k == kind for item in items.values()]

    def handle(
        self, method: str, path: str, query: dict[str, list[str]], body: dict[str, Any]
    ) -> tuple[int, Any]:
        parts = [unquote(p) for p in path.removeprefix("/api/v4/").split("/")]
        if method != "GET":
            self.mutations.append(f"{method} /{'/'.join(parts)}")
        if parts == ["user"]:
            return 200, {"id": 1, "username": "root"}
        if parts == ["user", "runners"] and method == "POST":
            runner = {"id": next(self.ids), "token": f"glrt-{next(self.ids)}", "tag_list": [body["tag_list"]]}
            self.items("projects", int(body["project_id"]), "runners")[str(runner["id"])] = runner
            return 201, runner
        if parts[0] == "groups":
            if len(parts) == 1 and method == "POST":
                group = {
                    "id": next(self.ids),
                    "name": body["name"],
                    "path": body["path"],
                    "full_path": body["path"],
                }
                self.groups[group["path"]] = group
                return 201, group
            group = self.groups.get(parts[1]) or next(
                (g for g in self.groups.values() if str(g["id"]) == parts[1]), None
            )
            if group is None:
                return 404, {"message": "404 Group Not Found"}
            return self.sub("groups", group, parts[2:], method, query, body) if parts[2:] else (200, group)
        if parts[0] == "projects":
            if len(parts) == 1 and method == "POST":
                group = next(g for g in self.groups.values() if g["id"] == body["namespace_id"])
                full = f"{group['full_path']}/{body['path']}"
                project = {
                    "id": next(self.ids),
                    "name": body["name"],
                    "path": body["path"],
                    "path_with_namespace": full,
                }
                self.projects[full] = project
                return 201, project
            project = self.projects.get(parts[1]) or next(
                (p for p in self.projects.values() if str(p["id"]) == parts[1]), None
            )
            if project is None:
                return 404, {"message": "404 Project Not Found"}
            return (
                self.sub("projects", project, parts[2:], method, query, body) if parts[2:] else (200, project)
            )
        return 404, {"message": f"404 {path} not in the fake"}

    def sub(
        self, owner: str, obj: dict[str, Any], parts: list[str], method: str, query: dict, body: dict
    ) -> tuple[int, Any]:
        kind = parts[0]
        items = self.items(owner, obj["id"], kind)
        key_field = {"protected_branches": "name", "variables": "key"}.get(kind, "id")
        if kind == "runners" and method == "POST":  # enable an existing project runner here too
            runner = next(r for r in self.all("runners") if r["id"] == int(body["runner_id"]))
            items[str(runner["id"])] = runner
            return 201, runner
        if kind == "pipeline_schedules" and parts[2:3] == ["variables"] and parts[1] in items:
            variables = items[parts[1]]["variables"]
            if method == "POST":
                variables.append(dict(body))
                return 201, body
            variable = next(v for v in variables if v["key"] == parts[3])
            variable |= body
            return 200, variable
        if len(parts) == 1 and method == "GET":
            found = list(items.values())
            if "tag_list" in query:
                found = [i for i in found if query["tag_list"][0] in i.get("tag_list", [])]
            return 200, found
        if len(parts) == 1 and method == "POST":
            item = dict(body)
            if kind == "protected_branches":
                item["push_access_levels"] = [{"access_level": body["push_access_level"]}]
            if kind == "pipeline_schedules":
                item |= {"id": next(self.ids), "variables": []}
            if kind == "hooks":
                item |= {"id": next(self.ids)}
                self.hook_tokens[str(item["id"])] = item.pop("token", None)
            if kind in ("deploy_tokens", "access_tokens"):
                item |= {"id": next(self.ids), "token": f"secret-{kind}-{next(self.ids)}", "revoked": False}
                item |= {"username": f"gitlab+deploy-token-{item['id']}", "active": True}
            key = str(item[key_field])
            if key in items:
                return 400, {"message": f"{key} has already been taken"}
            items[key] = item
            return 201, item
        if parts[1] not in items:
            return 404, {"message": f"404 {kind} Not Found"}
        if method == "GET":
            return 200, items[parts[1]]
        if method == "PUT":
            if kind == "hooks":  # GitLab takes a hook's token and never shows it again
                body = dict(body)
                self.hook_tokens[parts[1]] = body.pop("token", self.hook_tokens.get(parts[1]))
            items[parts[1]] |= body
            return 200, items[parts[1]]
        if method == "DELETE":
            del items[parts[1]]
            return 204, None
        return 405, {"message": "method not allowed"}


def serve(fake: FakeGitLab, token: str = TOKEN) -> ThreadingHTTPServer:
    class Handler(BaseHTTPRequestHandler):
        def _answer(self) -> None:
            if self.headers.get("PRIVATE-TOKEN") != token:
                code, data = 401, {"message": "401 Unauthorized"}
            else:
                url = urlsplit(self.path)
                raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                if "json" in self.headers.get("Content-Type", ""):
                    body = json.loads(raw or b"{}")
                else:
                    body = {k: v[0] for k, v in parse_qs(raw.decode()).items()}
                code, data = fake.handle(self.command, url.path, parse_qs(url.query), body)
            payload = b"" if data is None else json.dumps(data).encode()
            self.send_response(code)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        do_GET = do_POST = do_PUT = do_DELETE = _answer

        def log_message(self, format: str, *args: object) -> None:
            return

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


@pytest.fixture
def fake() -> Iterator[tuple[FakeGitLab, str]]:
    state = FakeGitLab()
    server = serve(state)
    yield state, f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


SPEC = gitlab_platform.Spec(platform_ca_pem="-----BEGIN CERTIFICATE-----\nfake\n-----END CERTIFICATE-----\n")


def test_first_run_creates_everything(fake: tuple[FakeGitLab, str]) -> None:
    state, url = fake
    report = gitlab_platform.ensure(gitlab_platform.connect(url, TOKEN), SPEC)
    assert set(state.projects) == {"boutique/app-repo", "boutique/gitops-repo"}
    app, gitops = state.projects["boutique/app-repo"]["id"], state.projects["boutique/gitops-repo"]["id"]
    for project in (app, gitops):
        branch = state.items("projects", project, "protected_branches")["main"]
        assert branch["push_access_level"] == 40 and branch["allow_force_push"] is False
    variables = state.items("projects", app, "variables")
    assert set(variables) == {"REGISTRY_USER", "REGISTRY_PASSWORD", "GITOPS_TOKEN"}
    for key in ("REGISTRY_PASSWORD", "GITOPS_TOKEN"):
        assert variables[key]["masked"] is True and variables[key]["protected"] is True
    (bump,) = state.items("projects", gitops, "access_tokens").values()
    assert bump["scopes"] == ["write_repository"] and variables["GITOPS_TOKEN"]["value"] == bump["token"]
    (deploy,) = state.items("projects", app, "deploy_tokens").values()
    assert variables["REGISTRY_PASSWORD"]["value"] == deploy["token"]
    assert "write_registry" in deploy["scopes"]
    ca = state.items("groups", state.groups["boutique"]["id"], "variables")["PLATFORM_CA"]
    assert ca["variable_type"] == "file"
    assert report.runner_token and report.runner_token.startswith("glrt-")
    assert len(report.changed) >= 10
    assert state.items("projects", gitops, "runners") == state.items("projects", app, "runners")
    (nightly,) = state.items("projects", gitops, "pipeline_schedules").values()
    assert (nightly["description"], nightly["ref"], nightly["cron"], nightly["active"]) == (
        "nightly verification",
        "main",
        "0 2 * * *",
        True,
    )
    assert {v["key"]: v["value"] for v in nightly["variables"]} == {"SCHEDULE": "nightly", "TARGET": "onprem"}


def test_a_nightly_schedule_changed_by_hand_is_put_back_in_place(fake: tuple[FakeGitLab, str]) -> None:
    state, url = fake
    gl = gitlab_platform.connect(url, TOKEN)
    gitlab_platform.ensure(gl, SPEC)
    gitops = state.projects["boutique/gitops-repo"]["id"]
    (nightly,) = state.items("projects", gitops, "pipeline_schedules").values()
    nightly["cron"], nightly["active"] = "0 12 * * *", False
    nightly["variables"] = [{"key": "TARGET", "value": "staging"}]
    state.mutations.clear()
    report = gitlab_platform.ensure(gl, SPEC)
    sid = nightly["id"]
    assert state.mutations == [
        f"PUT /projects/{gitops}/pipeline_schedules/{sid}",
        f"POST /projects/{gitops}/pipeline_schedules/{sid}/variables",
        f"PUT /projects/{gitops}/pipeline_schedules/{sid}/variables/TARGET",
    ]
    assert (nightly["cron"], nightly["active"]) == ("0 2 * * *", True)
    assert {v["key"]: v["value"] for v in nightly["variables"]} == {"TARGET": "onprem", "SCHEDULE": "nightly"}
    assert [c for c in report.changed if "pipeline schedule" in c]


def test_gitops_repos_push_webhook_is_made_once_and_takes_a_new_token(
    fake: tuple[FakeGitLab, str], caplog: pytest.LogCaptureFixture
) -> None:
    state, url = fake
    caplog.set_level(logging.DEBUG)
    gl = gitlab_platform.connect(url, TOKEN)
    gitlab_platform.ensure(gl, SPEC)
    gitops = state.projects["boutique/gitops-repo"]["id"]
    argocd = "https://argocd.local/api/webhook"
    state.mutations.clear()
    first = gitlab_platform.ensure_push_webhook(gl, argocd, "secret-one", new_token=True, spec=SPEC)
    (hook,) = state.items("projects", gitops, "hooks").values()
    assert (hook["url"], hook["push_events"], hook["push_events_branch_filter"]) == (argocd, True, "main")
    assert hook["enable_ssl_verification"] is True and state.hook_tokens[str(hook["id"])] == "secret-one"
    assert first.changed == [f"push webhook of gitops-repo to {argocd}"]
    again = gitlab_platform.ensure_push_webhook(gl, argocd, "secret-one", new_token=False, spec=SPEC)
    assert again.changed == [] and state.mutations == [f"POST /projects/{gitops}/hooks"]
    # Argo CD's secret was made again (its Secret was lost): the hook gets the new one
    gitlab_platform.ensure_push_webhook(gl, argocd, "secret-two", new_token=True, spec=SPEC)
    assert state.hook_tokens[str(hook["id"])] == "secret-two"
    assert len(state.items("projects", gitops, "hooks")) == 1
    assert "secret-one" not in caplog.text and "secret-two" not in caplog.text


def test_second_run_changes_nothing(fake: tuple[FakeGitLab, str]) -> None:
    state, url = fake
    gl = gitlab_platform.connect(url, TOKEN)
    gitlab_platform.ensure(gl, SPEC)
    state.mutations.clear()
    report = gitlab_platform.ensure(gl, SPEC)
    assert report.changed == []
    assert state.mutations == []
    assert report.runner_token is None


def test_tokens_never_show_in_the_report_or_the_log(
    fake: tuple[FakeGitLab, str], caplog: pytest.LogCaptureFixture
) -> None:
    state, url = fake
    caplog.set_level(logging.DEBUG)
    report = gitlab_platform.ensure(gitlab_platform.connect(url, TOKEN), SPEC)
    secrets = [
        v["token"]
        for (_, _, kind), items in state.children.items()
        if kind.endswith("tokens")
        for v in items.values()
    ]
    assert secrets
    shown = repr(report) + caplog.text
    assert not [s for s in [*secrets, report.runner_token or "", TOKEN] if s in shown]


def test_a_token_whose_variable_was_lost_is_rotated(fake: tuple[FakeGitLab, str]) -> None:
    state, url = fake
    gl = gitlab_platform.connect(url, TOKEN)
    gitlab_platform.ensure(gl, SPEC)
    app, gitops = state.projects["boutique/app-repo"]["id"], state.projects["boutique/gitops-repo"]["id"]
    (old,) = state.items("projects", gitops, "access_tokens").values()
    del state.items("projects", app, "variables")["GITOPS_TOKEN"]
    state.mutations.clear()
    gitlab_platform.ensure(gl, SPEC)
    (new,) = state.items("projects", gitops, "access_tokens").values()
    assert new["id"] != old["id"]
    assert state.items("projects", app, "variables")["GITOPS_TOKEN"]["value"] == new["token"]
    assert state.mutations == [
        f"DELETE /projects/{gitops}/access_tokens/{old['id']}",
        f"POST /projects/{gitops}/access_tokens",
        f"POST /projects/{app}/variables",
    ]


def test_a_refused_token_is_one_clear_error(fake: tuple[FakeGitLab, str]) -> None:
    _, url = fake
    with pytest.raises(gitlab_platform.GitLabUnavailable, match=r"refused the token \(401\)"):
        gitlab_platform.connect(url, "wrong-token")


def test_an_unreachable_gitlab_is_one_clear_error() -> None:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    with pytest.raises(
        gitlab_platform.GitLabUnavailable, match=rf"cannot reach GitLab at http://127.0.0.1:{port}"
    ):
        gitlab_platform.connect(f"http://127.0.0.1:{port}", TOKEN)


def test_layer_1_on_prem_is_ready_once_the_runner_is_online(
    fake: tuple[FakeGitLab, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    state, url = fake
    base = targets.load("onprem.example")
    assert base.gitlab is not None
    target = base.model_copy(update={"gitlab": base.gitlab.model_copy(update={"url": url, "ca_file": None})})
    monkeypatch.setenv(base.gitlab.token_env, TOKEN)
    monkeypatch.setattr(gitlab_platform, "RUNNER_TOKEN_FILE", tmp_path / "runner-token")
    # GitLab runs already (no ssh to the example's mini PC), and its registry holds the probe image
    monkeypatch.setattr(
        phase1_platform.hosts, "unreachable", lambda *args, **kwargs: "mini-pc: not in this test"
    )
    probed: list[str] = []
    monkeypatch.setattr(phase1_platform.probe_image, "ensure_on_target", lambda t: probed.append(t.name))
    with pytest.raises(LayerUnavailable, match="no online runner tagged boutique for app-repo: register it"):
        phase1_platform.ensure(target)
    kept = tmp_path / "runner-token"
    assert kept.stat().st_mode & 0o777 == 0o600 and kept.read_text().startswith("glrt-")
    app = state.projects["boutique/app-repo"]["id"]
    for runner in state.items("projects", app, "runners").values():
        runner["status"] = "online"  # what the host's `gitlab-runner register` and its first contact do
    state.mutations.clear()
    layer = phase1_platform.ensure(target)
    assert layer.ready and not layer.changed
    assert state.mutations == []
    assert probed == [target.name], "the probe image is ensured once GitLab is ready"


def test_layer_1_on_prem_without_a_token_says_which_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    target = targets.load("onprem.example")
    assert target.gitlab is not None
    monkeypatch.delenv(target.gitlab.token_env, raising=False)
    with pytest.raises(LayerUnavailable, match=rf"{target.gitlab.token_env} is not set"):
        phase1_platform.check(target)
