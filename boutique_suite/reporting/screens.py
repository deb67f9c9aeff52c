"""Screens: pages captured in headless Chromium (Debian's package, driven by Playwright) and attached to the
scenario with a caption, kept under reports/screens/.

Each capture runs in its own ``python -m boutique_suite.reporting.screens`` process: Locust's gevent patches
this process's sockets, which Playwright's event loop must not share, and a browser that hangs cannot hang the
scenario. A session cookie travels on the child's stdin, never in its argv, a log or an attachment. Without a
browser the screen is skipped with the reason, once per run, and the scenario's outcome does not change."""

from __future__ import annotations

import html
import json
import logging
import os
import re
import shutil
import subprocess
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from boutique_suite.reporting import evidence

log = logging.getLogger(__name__)

CAPTURE_SECONDS = 45
# The pages are the lab's or the LAN's: never through a proxy the environment may name.
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--no-proxy-server",
]
NO_BROWSER = (
    "no Chromium on this machine (./run setup installs Debian's chromium; BOUTIQUE_CHROMIUM names another)"
)
_said: set[str] = set()


@dataclass
class Capture:
    """What the child process opens and photographs: a URL, or HTML the suite rendered."""

    out: str
    url: str | None = None
    html: str | None = None
    wait_for: str = "body"  # a CSS selector that must be visible before the photo
    click: str | None = None  # then follow this link, and wait for ``wait_for`` again
    host: str | None = None  # a virtual host served at the URL's address (the storefront behind ingress)
    cookies: list[dict[str, str]] = field(default_factory=list)  # session cookies; never logged
    headers: dict[str, str] = field(default_factory=dict)  # e.g. a bearer token; never logged
    wait_ms: int = 20_000  # for the page to load and the selector to show


def chromium() -> str | None:
    return os.environ.get("BOUTIQUE_CHROMIUM") or shutil.which("chromium") or shutil.which("chromium-browser")


def screens_dir() -> Path:
    return evidence.REPORTS / "screens"


def png(name: str) -> str:
    """reports/screens/<name>-<time>.png: a screen taken again (another scenario, another run) is kept."""
    return str(screens_dir() / f"{slug(name)}-{time.strftime('%Y%m%d-%H%M%S')}.png")


def slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")[:80]


def take(name: str, caption: str, capture: Capture) -> Path | None:
    """Photograph, attach with ``caption`` and return the PNG; None (and a note, once) when it cannot."""
    browser = chromium()
    if browser is None:
        _note_once(NO_BROWSER)
        return None
    out = Path(capture.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    try:
        done = subprocess.run(
            [sys.executable, "-m", "boutique_suite.reporting.screens", browser],
            input=json.dumps(asdict(capture)),
            capture_output=True,
            text=True,
            timeout=CAPTURE_SECONDS,
        )
    except subprocess.TimeoutExpired:
        _note_once(f"screen {name!r} not taken: the browser did not finish in {CAPTURE_SECONDS} s")
        return None
    if done.returncode != 0 or not out.exists():
        reason = (done.stderr.strip().splitlines() or ["no output"])[-1]
        evidence.note(f"screen {name!r} not taken", reason)
        return None
    evidence.attach_png(f"screen: {caption}", out)
    return out


def page(name: str, caption: str, url: str, **how: Any) -> Path | None:
    """A real page of the platform."""
    return take(name, caption, Capture(out=png(name), url=url, **how))


def rendering(name: str, caption: str, title: str, body_html: str) -> Path | None:
    """A page the suite renders from an API's answer (said in the caption and on the page)."""
    doc = RENDERING.format(title=html.escape(title), caption=html.escape(caption), body=body_html)
    return take(name, caption, Capture(out=png(name), html=doc))


def _note_once(reason: str) -> None:
    evidence.note("screens skipped", reason)
    if reason not in _said:
        _said.add(reason)
        log.warning("screens skipped: %s", reason)


RENDERING = """<!doctype html><html><head><meta charset="utf-8"><style>
body {{ font-family: sans-serif; margin: 24px; color: #1d1c1d; }}
.caption {{ color: #616061; font-size: 12px; margin-bottom: 16px; }}
table {{ border-collapse: collapse; }}
td, th {{ border: 1px solid #ddd; padding: 4px 10px; text-align: left; }}
.card {{ border-left: 4px solid #e01e5a; padding: 8px 14px; background: #f8f8f8; white-space: pre-wrap; }}
.ok {{ color: #18794e; font-weight: bold; }} .bad {{ color: #c62828; font-weight: bold; }}
</style><title>{title}</title></head>
<body><h2>{title}</h2><div class="caption">{caption}</div>{body}</body></html>"""


def _capture(browser: str, job: Capture) -> None:
    from playwright.sync_api import sync_playwright

    args, url = list(CHROMIUM_ARGS), job.url
    if job.host and url:  # the virtual host resolves to the address in the URL, as DNS would make it
        address = urlsplit(url).hostname
        args.append(f"--host-resolver-rules=MAP {job.host} {address}")
        url = url.replace(f"//{address}", f"//{job.host}", 1)
    with sync_playwright() as pw:
        chrome = pw.chromium.launch(executable_path=browser, args=args)
        try:
            context = chrome.new_context(
                viewport={"width": 1280, "height": 800}, extra_http_headers=job.headers or None
            )
            if job.cookies:
                context.add_cookies(job.cookies)  # type: ignore[arg-type]
            tab = context.new_page()
            if job.html is not None:
                tab.set_content(job.html)
            else:
                assert url, "a capture needs a url or html"
                tab.goto(url, wait_until="load", timeout=job.wait_ms)
            tab.wait_for_selector(job.wait_for, state="visible", timeout=job.wait_ms)
            if job.click:
                tab.click(job.click, timeout=job.wait_ms)
                tab.wait_for_load_state("load")
                tab.wait_for_selector(job.wait_for, state="visible", timeout=job.wait_ms)
            tab.screenshot(path=job.out, full_page=True)
        finally:
            chrome.close()


def main(argv: list[str]) -> int:
    job = Capture(**json.loads(sys.stdin.read()))
    try:
        _capture(argv[0], job)
    except Exception as exc:  # the parent reads the last line of stderr as the reason
        print(f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
