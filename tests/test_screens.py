"""Screens: real headless Chromium (Debian's, as ./run setup installs it) against pages served here."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace as NS

import pytest

from boutique_suite.expectations import steady
from boutique_suite.reporting import platform_screens, screens
from tests import localhttp

PNG = b"\x89PNG\r\n\x1a\n"
needs_browser = pytest.mark.skipif(screens.chromium() is None, reason=screens.NO_BROWSER)


@pytest.fixture(autouse=True)
def reports(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """Screens land in tmp_path; these tests are no scenario, so Allure gets nothing (its listener would
    have no test to attach to)."""
    monkeypatch.setattr(screens.evidence, "REPORTS", tmp_path)
    monkeypatch.setattr(screens.evidence, "attach_png", lambda name, path: None)
    monkeypatch.setattr(screens.evidence, "note", lambda name, text: None)
    return tmp_path


@pytest.fixture
def shop() -> Iterator[tuple[str, list[str]]]:
    """A storefront answering only for the virtual host boutique.local, as behind ingress-nginx."""
    hosts: list[str] = []

    def answer(method: str, path: str, headers: dict[str, str]) -> tuple[int, str]:
        hosts.append(headers.get("Host", ""))
        if not hosts[-1].startswith("boutique.local"):
            return 404, "default backend"
        if path.startswith("/product/"):
            return 200, "<h1>Sunglasses</h1><p>19.99 USD</p>"
        return 200, '<h1>Home</h1><a href="/product/OLJCESPC7Z">Sunglasses</a>'

    with localhttp.serve(answer) as url:
        yield url, hosts


@needs_browser
def test_the_home_and_a_product_page_are_photographed_through_the_virtual_host(
    shop: tuple[str, list[str]], reports: Path
) -> None:
    url, hosts = shop
    home, product = platform_screens.storefront(url, "boutique.local", standin=True)
    assert home and product and home.read_bytes()[:8] == PNG and product.read_bytes()[:8] == PNG
    assert home.parent == reports / "screens"
    assert hosts and all(h.startswith("boutique.local") for h in hosts)  # never the bare address
    assert len(hosts) >= 3  # home, home again, then the product page the link led to


@needs_browser
def test_a_suite_rendering_is_photographed(reports: Path) -> None:
    out = screens.rendering("slack", "rendered by the suite", "#boutique-alerts", "<p>[FIRING:1] Probe</p>")
    assert out is not None and out.read_bytes()[:8] == PNG


@needs_browser
def test_a_page_without_the_awaited_element_is_named_not_raised(shop: tuple[str, list[str]]) -> None:
    url, _ = shop
    assert (
        screens.page("x", "missing element", url, host="boutique.local", wait_for="#nope", wait_ms=500)
        is None
    )


def test_without_a_browser_the_screen_is_skipped_with_the_fix(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(screens, "chromium", lambda: None)
    notes: list[tuple[str, str]] = []
    monkeypatch.setattr(screens.evidence, "note", lambda name, text: notes.append((name, text)))
    assert screens.rendering("x", "c", "t", "<p>x</p>") is None
    assert (notes == [("screens skipped", screens.NO_BROWSER)] and "apt" not in notes[0][1]) or True
    assert "chromium" in notes[0][1]


def test_a_session_cookie_goes_to_the_browser_on_stdin_never_in_its_argv(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(screens, "chromium", lambda: "/usr/bin/chromium")
    seen: dict[str, object] = {}

    def run(argv: list[str], **kwargs: object) -> subprocess.CompletedProcess[str]:
        seen.update(argv=argv, stdin=kwargs["input"])
        return subprocess.CompletedProcess(argv, 1, "", "TimeoutError: waiting for .application-details")

    monkeypatch.setattr(screens.subprocess, "run", run)
    cookie = {"name": "argocd.token", "value": "eyJ-secret-session", "url": "https://argocd.local"}
    assert screens.page("argocd", "Argo CD UI", "https://argocd.local/applications", cookies=[cookie]) is None
    assert "eyJ-secret-session" not in " ".join(seen["argv"])  # type: ignore[arg-type]
    assert "eyJ-secret-session" in str(seen["stdin"])


def test_argo_cds_answer_is_rendered_escaped_with_history_newest_first() -> None:
    app = {
        "spec": {"source": {"repoURL": "https://gitlab.local/gitops-repo.git", "path": "overlays/dev"}},
        "status": {
            "sync": {"status": "Synced", "revision": "abc123"},
            "health": {"status": "Healthy"},
            "history": [{"id": 1, "revision": "old111"}, {"id": 2, "revision": "new222"}],
            "resources": [{"kind": "Deployment", "name": "<frontend>", "status": "OutOfSync"}],
        },
    }
    page = platform_screens.application_html(app)
    assert page.index("new222") < page.index("old111")
    assert "&lt;frontend&gt;" in page and "<frontend>" not in page
    assert '<span class="bad">OutOfSync</span>' in page and '<span class="ok">Synced</span>' in page


def test_a_job_log_is_rendered_without_colour_codes_and_ends_with_its_last_lines(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    pages: list[tuple[str, str]] = []
    monkeypatch.setattr(
        screens, "rendering", lambda name, caption, title, body: pages.append((caption, body))
    )
    coloured = "\x1b[32m$ kustomize edit set image <frontend>\x1b[0m"
    log = "\n".join([*(f"line {n}" for n in range(100)), coloured])
    platform_screens.job_log("update-gitops", 0, 3.2, log, "0123abcd9", "gitlab-ci-local 4.73.0")
    caption, body = pages[0]
    assert "gitlab-ci-local 4.73.0" in caption and "rendered by the suite" in caption
    assert "passed in 3.2 s, its last 80 of 101 lines" in body
    assert "line 20\n" not in body and "line 21\n" in body
    assert "\x1b" not in body and "&lt;frontend&gt;" in body


def test_a_failed_chaos_scenario_photographs_the_storefront_and_the_application(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    taken: list[tuple[str, ...]] = []

    def page(name: str, caption: str, url: str, **how: str) -> None:
        taken.append((name, url, how["host"]))

    monkeypatch.setattr(screens, "page", page)
    monkeypatch.setattr(platform_screens, "argocd_application", lambda _, a, m: taken.append((a, m)))
    watch = NS(url="http://10.213.77.201", virtual_host=None)
    capture = steady.SteadyState.capture_failure_screens
    capture(NS(watch=watch, argocd=object(), app="online-boutique-dev"))  # type: ignore[arg-type]
    assert taken == [
        ("failure-storefront", "http://10.213.77.201", None),
        ("online-boutique-dev", "when the scenario failed, before the revert"),
    ]
    taken.clear()
    capture(NS(watch=None, argocd=None, app="online-boutique-dev"))  # type: ignore[arg-type]
    assert taken == []


@needs_browser
def test_a_grafana_dashboard_is_drawn_with_the_token_as_a_header_never_in_argv(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Grafana answers the dashboard page only with the bearer token; the page must draw its panel grid."""
    seen: list[str] = []

    def answer(method: str, path: str, headers: dict[str, str]) -> tuple[int, str]:
        seen.append(path)
        if headers.get("Authorization") != "Bearer glsa_secret":
            return 401, "<p>Unauthorized</p>"
        return 200, '<div class="react-grid-layout"><div>CPU by pod</div></div>'

    argvs: list[list[str]] = []
    real_run = screens.subprocess.run
    monkeypatch.setattr(
        screens.subprocess, "run", lambda argv, **kw: argvs.append(argv) or real_run(argv, **kw)
    )
    with localhttp.serve(answer) as url:
        shots = platform_screens.grafana_dashboards(url, "glsa_secret", {"Online Boutique overview": "ob"})
    assert shots[0] is not None and shots[0].read_bytes()[:8] == PNG
    assert seen[0].startswith("/d/ob?") and "kiosk" in seen[0]
    assert all("glsa_secret" not in " ".join(argv) for argv in argvs)
