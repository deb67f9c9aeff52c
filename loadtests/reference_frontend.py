"""A small storefront with the Online Boutique frontend's routes, for contract tests and the benchmark.

It follows the routes in shared/reference/online-boutique.md: session and currency cookies, carts per
session, redirects after POSTs, 422 on a bad form. It is not the shop (no backends, tiny pages) and can
be told to break a route (``faults``) so tests can prove the locustfile notices.

Run it alone: ``python -m loadtests.reference_frontend --port 8080`` (prints its URL, serves until killed).
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import html
import re
import subprocess
import sys
import threading
import uuid
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import ClassVar
from urllib.parse import parse_qs

from loadtests.catalog import CURRENCIES, CURRENCY_COOKIE, PRODUCTS, SESSION_COOKIE

CHECKOUT_FIELDS = (
    "email",
    "street_address",
    "zip_code",
    "city",
    "state",
    "country",
    "credit_card_number",
    "credit_card_expiration_month",
    "credit_card_expiration_year",
    "credit_card_cvv",
)


def checkout_problems(form: dict[str, str], today: datetime.date | None = None) -> list[str]:
    """What is wrong with a checkout form (empty when the frontend would accept it)."""
    today = today or datetime.date.today()
    problems = [f"{field} is required" for field in CHECKOUT_FIELDS if not form.get(field, "").strip()]
    if problems:
        return problems
    if not re.fullmatch(r"[^@\s]+@[^@\s]+\.[^@\s]+", form["email"]):
        problems.append("email is not an address")
    if not valid_card(form["credit_card_number"]):
        problems.append("credit_card_number is not a card number")
    if not re.fullmatch(r"\d{3,4}", form["credit_card_cvv"]):
        problems.append("credit_card_cvv is not 3 or 4 digits")
    try:
        month, year = int(form["credit_card_expiration_month"]), int(form["credit_card_expiration_year"])
    except ValueError:
        return [*problems, "the card's expiration is not numeric"]
    if not 1 <= month <= 12:
        problems.append("credit_card_expiration_month is not 1-12")
    elif (year, month) < (today.year, today.month):
        problems.append("the card has expired")
    return problems


def valid_card(number: str) -> bool:
    """13–19 digits (spaces and dashes allowed) with a valid Luhn check digit."""
    digits = re.sub(r"[ -]", "", number)
    if not re.fullmatch(r"\d{13,19}", digits):
        return False
    doubled = [int(d) * 2 - 9 if int(d) > 4 else int(d) * 2 for d in digits[-2::-2]]
    return (sum(int(d) for d in digits[-1::-2]) + sum(doubled)) % 10 == 0


def _page(title: str, body: str) -> bytes:
    return f"<!doctype html><html><head><title>{title}</title></head><body>{body}</body></html>".encode()


def _product_links(products: list[str] | tuple[str, ...]) -> str:
    return "".join(f'<li><a href="/product/{p}">{p}</a></li>' for p in products)


class Storefront:
    """The shop's state: carts per session, and the faults a test switched on."""

    def __init__(self) -> None:
        self.carts: dict[str, dict[str, int]] = {}
        self.lock = threading.Lock()
        self.faults: dict[str, int] = {}  # "METHOD /route" → status to answer instead (nothing else done)
        self.forget_sessions = False  # when True, never set the session cookie (every request: new shopper)
        self.requests = 0
        self.hosts: Counter[str] = Counter()  # the Host header of each request (an ingress routes by it)

    def add(self, session: str, product: str, quantity: int) -> None:
        with self.lock:
            cart = self.carts.setdefault(session, {})
            cart[product] = cart.get(product, 0) + quantity

    def cart(self, session: str) -> dict[str, int]:
        with self.lock:
            return dict(self.carts.get(session, {}))

    def empty(self, session: str) -> None:
        with self.lock:
            self.carts.pop(session, None)


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    wbufsize = 64 * 1024  # headers and body leave in one write (flushed after each request) ...
    disable_nagle_algorithm = True  # ... and at once: no 40 ms delayed-ACK stalls on keep-alive
    server: FrontendServer
    routes: ClassVar[dict[str, str]] = {
        "GET /_healthz": "healthz",
        "GET /": "home",
        "GET /cart": "view_cart",
        "POST /cart": "add_to_cart",
        "POST /cart/empty": "empty_cart",
        "POST /setCurrency": "set_currency",
        "GET /logout": "logout",
        "POST /cart/checkout": "checkout",
    }

    def log_message(self, format: str, *args: object) -> None:  # quiet: the benchmark sends thousands
        pass

    def do_GET(self) -> None:
        self._dispatch("GET")

    def do_POST(self) -> None:
        self._dispatch("POST")

    # --- plumbing ----------------------------------------------------------------------------------

    def _dispatch(self, method: str) -> None:
        shop = self.server.shop
        shop.requests += 1
        shop.hosts[self.headers.get("Host", "")] += 1
        path = self.path.split("?", 1)[0]
        self.form = self._read_form() if method == "POST" else {}
        self.cookies = self._read_cookies()
        self.new_cookies: list[str] = []
        self.session = self.cookies.get(SESSION_COOKIE) or ""
        if not self.session:
            self.session = str(uuid.uuid4())
            if not shop.forget_sessions:
                self.new_cookies.append(f"{SESSION_COOKIE}={self.session}; Path=/; Max-Age=172800")
        product = re.fullmatch(r"/product/([^/]+)", path)
        route = f"{method} /product/{{id}}" if product and method == "GET" else f"{method} {path}"
        if route in shop.faults:
            status = shop.faults[route]
            self._send(status, _page("fault", f"{route} broken on purpose ({status})"))
        elif product and method == "GET":
            self.product_page(product.group(1))
        elif route in self.routes:
            getattr(self, self.routes[route])()
        else:
            self._send(404, _page("not found", f"no route {html.escape(route)}"))

    def _read_form(self) -> dict[str, str]:
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length).decode() if length else ""
        return {key: values[0] for key, values in parse_qs(raw, keep_blank_values=True).items()}

    def _read_cookies(self) -> dict[str, str]:
        cookies = {}
        for part in (self.headers.get("Cookie") or "").split(";"):
            name, _, value = part.strip().partition("=")
            if name:
                cookies[name] = value
        return cookies

    def _send(self, status: int, body: bytes = b"", location: str | None = None) -> None:
        self.send_response(status)
        for cookie in self.new_cookies:
            self.send_header("Set-Cookie", cookie)
        if location:
            self.send_header("Location", location)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def _redirect(self, location: str) -> None:
        self._send(302, location=location)

    # --- routes ------------------------------------------------------------------------------------

    def healthz(self) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"ok")

    def home(self) -> None:
        currency = self.cookies.get(CURRENCY_COOKIE, "USD")
        self._send(200, _page("Online Boutique", f"<p>{currency}</p><ul>{_product_links(PRODUCTS)}</ul>"))

    def product_page(self, product: str) -> None:
        if product not in PRODUCTS:
            self._send(404, _page("not found", f"no product {html.escape(product)}"))
            return
        form = f'<form method="POST" action="/cart"><input type="hidden" name="product_id" value="{product}">'
        self._send(200, _page(product, f"<h2>{product}</h2>{form}</form>"))

    def view_cart(self) -> None:
        cart = self.server.shop.cart(self.session)
        items = "".join(
            f'<li><a href="/product/{p}">SKU #{p}</a> x {q}</li>' for p, q in sorted(cart.items())
        )
        self._send(200, _page("Cart", f"<ul>{items}</ul>" if cart else "<p>Your shopping cart is empty!</p>"))

    def add_to_cart(self) -> None:
        product, quantity = self.form.get("product_id", ""), self.form.get("quantity", "")
        if product not in PRODUCTS:
            self._send(422, _page("invalid", "unknown product_id"))
        elif not quantity.isdigit() or not 1 <= int(quantity) <= 10:
            self._send(422, _page("invalid", "quantity must be 1-10"))
        else:
            self.server.shop.add(self.session, product, int(quantity))
            self._redirect("/cart")

    def empty_cart(self) -> None:
        self.server.shop.empty(self.session)
        self._redirect("/")

    def set_currency(self) -> None:
        currency = self.form.get("currency_code", "")
        if currency not in CURRENCIES:
            self._send(422, _page("invalid", "unsupported currency"))
            return
        self.new_cookies.append(f"{CURRENCY_COOKIE}={currency}; Path=/; Max-Age=172800")
        self._redirect(self.headers.get("Referer") or "/")

    def logout(self) -> None:
        self.new_cookies = [f"{name}=; Path=/; Max-Age=0" for name in (SESSION_COOKIE, CURRENCY_COOKIE)]
        self._redirect("/")

    def checkout(self) -> None:
        problems = checkout_problems(self.form)
        if problems:
            self._send(422, _page("invalid", html.escape("; ".join(problems))))
            return
        self.server.shop.empty(self.session)
        confirmation = f"<h3>Your order is complete!</h3><p>Order Confirmation ID {uuid.uuid4()}</p>"
        self._send(200, _page("Order", confirmation))


class FrontendServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, host: str = "127.0.0.1", port: int = 0) -> None:
        super().__init__((host, port), Handler)
        self.shop = Storefront()

    def handle_error(self, request: object, client_address: object) -> None:
        """A shopper hanging up (Locust stopping its users) is normal here; anything else is printed."""
        if not isinstance(sys.exc_info()[1], ConnectionError):
            super().handle_error(request, client_address)

    @property
    def url(self) -> str:
        host, port = self.server_address[:2]
        return f"http://{host}:{port}"

    def start(self) -> FrontendServer:
        threading.Thread(target=self.serve_forever, name="reference-frontend", daemon=True).start()
        return self

    def stop(self) -> None:
        self.shutdown()
        self.server_close()


def start_process() -> tuple[subprocess.Popen[str], str]:
    """The reference frontend in a process of its own, on a port it picks; the process and its URL."""
    command = [sys.executable, "-m", "loadtests.reference_frontend", "--port", "0"]
    root = Path(__file__).resolve().parents[1]
    process = subprocess.Popen(command, cwd=root, stdout=subprocess.PIPE, text=True)
    url = process.stdout.readline().strip() if process.stdout else ""
    if not url.startswith("http://"):
        process.kill()
        raise RuntimeError(f"the reference frontend did not start (exit code {process.wait()})")
    return process, url  # it printed its URL after binding: it accepts connections already


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0, help="0: any free port")
    args = parser.parse_args(argv)
    server = FrontendServer(args.host, args.port)
    print(server.url, flush=True)
    with contextlib.suppress(KeyboardInterrupt):
        server.serve_forever()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
