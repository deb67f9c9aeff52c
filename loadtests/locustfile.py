"""Online Boutique shoppers, as upstream's load generator drives them, with every response checked.

Task weights follow upstream: home 1, set currency 2, browse product 10, add to cart 2, view cart 3,
checkout 1. Each request is validated (status, redirect, expected text) so a broken route counts as a
failure named after the request, e.g. ``POST /cart: expected 302 to /cart, got 200``.

By hand, with the web UI on http://127.0.0.1:8089::

    locust -f loadtests/locustfile.py --host http://<storefront>

Environment knobs: ``BOUTIQUE_WAIT_MIN`` / ``BOUTIQUE_WAIT_MAX`` (seconds between tasks, default 1–10);
setting ``BOUTIQUE_STEP_USERS`` switches on the step load (``BOUTIQUE_STEP_SECONDS``,
``BOUTIQUE_STEP_SPAWN_RATE``, ``BOUTIQUE_STEP_MAX_SECONDS``, optional ``BOUTIQUE_STEP_MAX_USERS``).
"""

from __future__ import annotations

import datetime
import os
import random
from collections.abc import Callable, Mapping
from typing import Any
from urllib.parse import urlsplit

from locust import FastHttpUser, LoadTestShape, between, task

try:
    from loadtests.catalog import CURRENCIES, CURRENCY_COOKIE, PRODUCTS, page_lists
except ImportError:  # `locust -f loadtests/locustfile.py` puts loadtests/ itself on sys.path
    from catalog import CURRENCIES, CURRENCY_COOKIE, PRODUCTS, page_lists  # type: ignore[no-redef]

ORDER_PLACED = "order"  # upstream's page says "Your order is complete!" and shows the order's id

# The shopper tasks (as the Gherkin names them) and the requests each one makes, as "METHOD name"
# (Locust's request name is the route: "/product/{id}" for every product).
TASK_REQUESTS: dict[str, tuple[str, ...]] = {
    "home": ("GET /",),
    "set currency": ("POST /setCurrency",),
    "browse product": ("GET /product/{id}",),
    "add to cart": ("GET /product/{id}", "POST /cart"),
    "view cart": ("GET /cart",),
    "checkout": ("GET /product/{id}", "POST /cart", "POST /cart/checkout"),
}
# Every request name, in the order the tasks above first make them.
ENDPOINTS = tuple(dict.fromkeys(name for names in TASK_REQUESTS.values() for name in names))


def wait_bounds(env: Mapping[str, str] = os.environ) -> tuple[float, float]:
    """Seconds a shopper waits between tasks: BOUTIQUE_WAIT_MIN / _MAX, upstream's 1–10 by default."""
    low = float(env.get("BOUTIQUE_WAIT_MIN") or 1)
    high = float(env.get("BOUTIQUE_WAIT_MAX") or max(low, 10))
    if not 0 <= low <= high:
        raise ValueError(f"BOUTIQUE_WAIT_MIN={low} and BOUTIQUE_WAIT_MAX={high}: need 0 <= min <= max")
    return low, high


def checkout_form(today: datetime.date | None = None) -> dict[str, str]:
    """A checkout form the frontend accepts: upstream's sample shopper, a card that expires in the future."""
    year = (today or datetime.date.today()).year + random.randint(1, 4)
    return {
        "email": "someone@example.com",
        "street_address": "1600 Amphitheatre Parkway",
        "zip_code": "94043",
        "city": "Mountain View",
        "state": "CA",
        "country": "United States",
        "credit_card_number": "4432801561520454",
        "credit_card_expiration_month": str(random.randint(1, 12)),
        "credit_card_expiration_year": str(year),
        "credit_card_cvv": "672",
    }


# --- response checks: each returns what is wrong, or None ------------------------------------------


def _got(response: Any) -> str:
    if getattr(response, "error", None) and not response.status_code:
        return f"no response ({response.error!r})"
    return f"got {response.status_code}"


def expect_page(response: Any, *texts: str) -> str | None:
    """A 200 page whose body holds every one of ``texts``."""
    if response.status_code != 200:
        return f"expected 200, {_got(response)}"
    body = response.text or ""
    missing = [text for text in texts if text not in body]
    return f"200 but the page lacks {missing}" if missing else None


def expect_cart(response: Any, products: set[str]) -> str | None:
    """A 200 cart page that lists every one of ``products`` (by id or by name)."""
    if response.status_code != 200:
        return f"expected 200, {_got(response)}"
    missing = sorted(p for p in products if not page_lists(response.text or "", p))
    return f"200 but the cart lacks {missing}" if missing else None


def expect_redirect(response: Any, location: str | None = None) -> str | None:
    """A 302 (to ``location`` when given: a path, or a full URL ending in it)."""
    where = f" to {location}" if location else ""
    if response.status_code != 302:
        return f"expected 302{where}, {_got(response)}"
    actual = response.headers.get("Location") or ""
    if location and urlsplit(actual).path != location:
        return f"expected 302{where}, got 302 to {actual or 'nowhere'}"
    return None


def expect_cookie(response: Any, name: str, value: str) -> str | None:
    """The response sets cookie ``name`` to ``value``."""
    for header in _set_cookie_headers(response):
        cookie_name, _, rest = header.partition("=")
        if cookie_name.strip() == name:
            actual = rest.split(";", 1)[0]
            return None if actual == value else f"set {name}={actual}, expected {value}"
    return f"did not set the cookie {name}"


def _set_cookie_headers(response: Any) -> list[str]:
    headers = response.headers
    if hasattr(headers, "get_all"):  # geventhttpclient
        return list(headers.get_all("Set-Cookie") or [])
    if hasattr(headers, "get_list"):
        return list(headers.get_list("Set-Cookie"))
    value = headers.get("Set-Cookie")
    return [value] if value else []


def first_problem(*checks: Callable[[], str | None]) -> str | None:
    """The first check that finds something wrong (later checks are not run)."""
    for check in checks:
        problem = check()
        if problem:
            return problem
    return None


# --- the shopper -----------------------------------------------------------------------------------


class BoutiqueShopper(FastHttpUser):
    """One shopper with their own session cookie and cart."""

    wait_time = between(*wait_bounds())

    def on_start(self) -> None:
        self.in_cart: set[str] = set()
        self.currency = "USD"
        self.index()

    def _record(self, response: Any, problem: str | None) -> None:
        if problem:
            response.failure(problem)
        else:
            response.success()

    @task(1)
    def index(self) -> None:
        with self.client.get("/", name="/", catch_response=True) as response:
            self._record(response, expect_page(response))

    @task(2)
    def set_currency(self) -> None:
        currency = random.choice(CURRENCIES)
        with self.client.post(
            "/setCurrency",
            name="/setCurrency",
            data={"currency_code": currency},
            allow_redirects=False,
            catch_response=True,
        ) as response:
            problem = first_problem(
                lambda: expect_redirect(response),
                lambda: expect_cookie(response, CURRENCY_COOKIE, currency),
            )
            self._record(response, problem)
        self.currency = currency

    @task(10)
    def browse_product(self) -> str:
        product = random.choice(PRODUCTS)
        path, name = f"/product/{product}", "/product/{id}"
        with self.client.get(path, name=name, catch_response=True) as response:
            self._record(response, expect_page(response, product))
        return product

    @task(2)
    def add_to_cart(self) -> None:
        product = self.browse_product()
        with self.client.post(
            "/cart",
            name="/cart",
            data={"product_id": product, "quantity": str(random.randint(1, 10))},
            allow_redirects=False,
            catch_response=True,
        ) as response:
            problem = expect_redirect(response, "/cart")
            self._record(response, problem)
        if problem is None:
            self.in_cart.add(product)

    @task(3)
    def view_cart(self) -> None:
        with self.client.get("/cart", name="/cart", catch_response=True) as response:
            # the cart lives in the session: what this shopper added must be listed
            self._record(response, expect_cart(response, self.in_cart))

    @task(1)
    def checkout(self) -> None:
        self.add_to_cart()
        with self.client.post(
            "/cart/checkout", name="/cart/checkout", data=checkout_form(), catch_response=True
        ) as response:
            problem = expect_page(response)
            if problem is None and ORDER_PLACED not in response.text.lower():
                problem = "200 but the page confirms no order"
            self._record(response, problem)
        if problem is None:
            self.in_cart.clear()  # placing the order empties the cart


# --- step load -------------------------------------------------------------------------------------


class StepLoadShape(LoadTestShape):
    """Adds ``step_users`` shoppers every ``step_seconds`` (spawning ``spawn_rate`` per second), up to
    ``max_users`` if given, and stops the test after ``max_seconds``."""

    abstract = True

    def __init__(
        self,
        step_users: int = 10,
        step_seconds: float = 30,
        spawn_rate: float = 5,
        max_seconds: float = 300,
        max_users: int | None = None,
    ) -> None:
        super().__init__()
        if step_users < 1 or step_seconds <= 0 or spawn_rate <= 0 or max_seconds <= 0:
            raise ValueError("step_users, step_seconds, spawn_rate and max_seconds must be positive")
        self.step_users = step_users
        self.step_seconds = step_seconds
        self.spawn_rate = spawn_rate
        self.max_seconds = max_seconds
        self.max_users = max_users

    def users_at(self, elapsed_s: float) -> int | None:
        """Shoppers wanted ``elapsed_s`` into the test; None once it is over."""
        if elapsed_s >= self.max_seconds:
            return None
        users = (int(elapsed_s // self.step_seconds) + 1) * self.step_users
        return min(users, self.max_users) if self.max_users else users

    def tick(self) -> tuple[int, float] | None:
        users = self.users_at(self.get_run_time())
        return None if users is None else (users, self.spawn_rate)


def step_settings(env: Mapping[str, str] = os.environ) -> dict[str, Any]:
    """StepLoadShape's settings from BOUTIQUE_STEP_* variables."""
    max_users = env.get("BOUTIQUE_STEP_MAX_USERS")
    return {
        "step_users": int(env.get("BOUTIQUE_STEP_USERS") or 10),
        "step_seconds": float(env.get("BOUTIQUE_STEP_SECONDS") or 30),
        "spawn_rate": float(env.get("BOUTIQUE_STEP_SPAWN_RATE") or 5),
        "max_seconds": float(env.get("BOUTIQUE_STEP_MAX_SECONDS") or 300),
        "max_users": int(max_users) if max_users else None,
    }


class StepLoadFromEnvironment(StepLoadShape):
    """The step load ``locust -f`` uses when BOUTIQUE_STEP_USERS is set (otherwise -u/-r/-t apply)."""

    abstract = "BOUTIQUE_STEP_USERS" not in os.environ

    def __init__(self) -> None:
        super().__init__(**step_settings())
