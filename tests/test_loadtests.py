"""The Locust shopper journey against a storefront on 127.0.0.1: the frontend's route contract (status codes,
redirects, cookies, form validation), a clean run against a correct frontend, a broken route reported by name,
the per-second series and the step load, and ``locust -f`` at a terminal.

Two frontends: the reference server (loadtests/reference_frontend.py, always) and the lab's stand-in
(provisioning/lab/services/images.py builds it when it is in the checkout; BOUTIQUE_STANDIN_SRC names another
copy of its source to build instead)."""

from __future__ import annotations

import datetime
import importlib.util
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
from ports import free_port

from loadtests import bench, locustfile, reference_frontend, standin_frontend
from loadtests.catalog import CURRENCY_COOKIE, PRODUCTS, SESSION_COOKIE, page_lists
from loadtests.locustfile import ENDPOINTS, TASK_REQUESTS, StepLoadShape
from loadtests.reference_frontend import FrontendServer, checkout_problems, valid_card
from loadtests.results import EndpointStats, LoadResult, percentile
from loadtests.runner import run_load, start_load

ROOT = Path(__file__).resolve().parents[1]
STANDIN_OVERRIDE = os.environ.get("BOUTIQUE_STANDIN_SRC", "")  # another copy of the stand-in's source
LOCUST = Path(sys.executable).with_name("locust")
FAST = (0.0, 0.02)  # seconds between a shopper's tasks: hundreds of requests in a few seconds
PRODUCT = PRODUCTS[3]


stop = standin_frontend.stop


# --- the frontends ---------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def reference_server() -> Iterator[FrontendServer]:
    server = FrontendServer().start()
    yield server
    server.stop()


@pytest.fixture
def reference(reference_server: FrontendServer) -> Iterator[FrontendServer]:
    """The reference frontend, working correctly at the start and end of each test."""
    reference_server.shop.faults.clear()
    reference_server.shop.forget_sessions = False
    yield reference_server
    reference_server.shop.faults.clear()
    reference_server.shop.forget_sessions = False


def standin_unavailable() -> str | None:
    if STANDIN_OVERRIDE:
        return None if (Path(STANDIN_OVERRIDE) / "main.go").is_file() else f"no main.go in {STANDIN_OVERRIDE}"
    if importlib.util.find_spec("provisioning.lab.services.images") is None:
        return (
            "the lab's stand-in is not in this checkout (no provisioning/lab/services/images.py to build it)"
        )
    if shutil.which("go") is None:
        return "no Go toolchain on PATH to build the stand-in"
    return None


def build_standin(tmp: Path) -> Path:
    """The stand-in binary: the lab's cached build, or a build of BOUTIQUE_STANDIN_SRC into ``tmp``."""
    if not STANDIN_OVERRIDE:
        from provisioning.lab.services import images

        return images.build_standin()
    binary = tmp / "standin"
    env = {**os.environ, "GOFLAGS": "-mod=mod", "CGO_ENABLED": "0"}
    command = ["go", "build", "-o", str(binary), "."]
    build = subprocess.run(
        command, cwd=STANDIN_OVERRIDE, capture_output=True, text=True, timeout=900, env=env
    )
    assert build.returncode == 0, f"go build of the stand-in failed:\n{build.stderr[-2000:]}"
    return binary


@pytest.fixture(scope="module")
def standin_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The lab's stand-in program as the frontend (SERVICE=frontend, no backends)."""
    reason = standin_unavailable()
    if reason:
        pytest.skip(reason)
    binary = build_standin(tmp_path_factory.mktemp("standin"))
    process, url = standin_frontend.start_process(binary, port=free_port())
    try:
        yield url
    finally:
        stop(process)


@pytest.fixture(params=["reference", "standin"])
def frontend(request: pytest.FixtureRequest) -> str:
    """The URL of a correct frontend: each test runs against both."""
    if request.param == "reference":
        return request.getfixturevalue("reference").url
    return request.getfixturevalue("standin_url")


@pytest.fixture(scope="module")
def reference_process() -> Iterator[str]:
    """The reference frontend in a process of its own (for the `locust` command line)."""
    process, url = reference_frontend.start_process()
    try:
        yield url
    finally:
        stop(process)


# --- the route contract ----------------------------------------------------------------------------


def shopper(url: str) -> requests.Session:
    """A shopper that has opened the home page (and so holds a session cookie)."""
    session = requests.Session()
    assert session.get(f"{url}/", timeout=5).status_code == 200
    return session


def in_cart(session: requests.Session, url: str, product: str) -> bool:
    cart = session.get(f"{url}/cart", timeout=5)
    assert cart.status_code == 200, f"GET /cart answered {cart.status_code}"
    return page_lists(cart.text, product)


def post(session: requests.Session, url: str, path: str, form: dict[str, str]) -> requests.Response:
    return session.post(f"{url}{path}", data=form, allow_redirects=False, timeout=5)


def test_healthz_answers_ok(frontend: str) -> None:
    response = requests.get(f"{frontend}/_healthz", timeout=5)
    assert (response.status_code, response.text.strip()) == (200, "ok")


def test_the_first_visit_sets_a_session_cookie_that_later_visits_keep(frontend: str) -> None:
    session = requests.Session()
    first = session.get(f"{frontend}/", timeout=5)
    assert first.status_code == 200
    assert SESSION_COOKIE in first.cookies, f"no {SESSION_COOKIE} in {first.headers.get('Set-Cookie')}"
    session_id = session.cookies[SESSION_COOKIE]
    session.get(f"{frontend}/product/{PRODUCT}", timeout=5)
    assert session.cookies[SESSION_COOKIE] == session_id


def test_every_product_has_a_page_naming_it(frontend: str) -> None:
    session = shopper(frontend)
    for product in PRODUCTS:
        response = session.get(f"{frontend}/product/{product}", timeout=5)
        assert response.status_code == 200 and product in response.text, product


def test_set_currency_redirects_and_sets_the_currency_cookie(frontend: str) -> None:
    session = shopper(frontend)
    response = post(session, frontend, "/setCurrency", {"currency_code": "JPY"})
    assert response.status_code == 302 and response.headers.get("Location")
    assert response.cookies.get(CURRENCY_COOKIE) == "JPY"


def test_add_to_cart_redirects_to_the_cart_which_lists_the_product(frontend: str) -> None:
    session = shopper(frontend)
    assert not in_cart(session, frontend, PRODUCT)
    response = post(session, frontend, "/cart", {"product_id": PRODUCT, "quantity": "2"})
    assert response.status_code == 302
    assert response.headers["Location"].endswith("/cart")
    assert in_cart(session, frontend, PRODUCT)


def test_the_cart_belongs_to_one_session(frontend: str) -> None:
    buyer, other = shopper(frontend), shopper(frontend)
    post(buyer, frontend, "/cart", {"product_id": PRODUCT, "quantity": "1"})
    assert in_cart(buyer, frontend, PRODUCT) and not in_cart(other, frontend, PRODUCT)


@pytest.mark.parametrize("quantity", ["0", "11", "many"])
def test_add_to_cart_refuses_a_quantity_outside_1_to_10(frontend: str, quantity: str) -> None:
    session = shopper(frontend)
    response = post(session, frontend, "/cart", {"product_id": PRODUCT, "quantity": quantity})
    assert 400 <= response.status_code < 500, f"quantity {quantity!r}: {response.status_code}"
    assert not in_cart(session, frontend, PRODUCT)


def test_empty_cart_redirects_and_empties_it(frontend: str) -> None:
    session = shopper(frontend)
    post(session, frontend, "/cart", {"product_id": PRODUCT, "quantity": "1"})
    assert in_cart(session, frontend, PRODUCT)
    assert post(session, frontend, "/cart/empty", {}).status_code == 302
    assert not in_cart(session, frontend, PRODUCT)


def test_logout_redirects(frontend: str) -> None:
    response = shopper(frontend).get(f"{frontend}/logout", allow_redirects=False, timeout=5)
    assert response.status_code == 302


def test_checkout_with_the_shoppers_form_places_the_order_and_empties_the_cart(frontend: str) -> None:
    session = shopper(frontend)
    post(session, frontend, "/cart", {"product_id": PRODUCT, "quantity": "1"})
    response = post(session, frontend, "/cart/checkout", locustfile.checkout_form())
    assert response.status_code == 200 and locustfile.ORDER_PLACED in response.text.lower()
    assert not in_cart(session, frontend, PRODUCT)


@pytest.mark.parametrize(
    "bad",
    [
        {"email": ""},
        {"credit_card_expiration_month": "13"},
        {"credit_card_expiration_year": str(datetime.date.today().year - 1)},
    ],
    ids=["no email", "month 13", "expired card"],
)
def test_checkout_refuses_a_bad_form_with_422(frontend: str, bad: dict[str, str]) -> None:
    session = shopper(frontend)
    post(session, frontend, "/cart", {"product_id": PRODUCT, "quantity": "1"})
    response = post(session, frontend, "/cart/checkout", {**locustfile.checkout_form(), **bad})
    assert response.status_code == 422


# --- the shoppers against a correct frontend and a broken one ---------------------------------------


def test_the_shoppers_run_every_task_without_a_failure_against_a_correct_frontend(frontend: str) -> None:
    result = run_load(frontend, users=4, spawn_rate=4, duration_s=3, wait_s=FAST)
    assert result.failures == 0, result.describe_failures()
    assert set(result.endpoints) == set(ENDPOINTS)
    assert all(result.endpoints[name].requests > 0 for name in ENDPOINTS)
    assert result.requests == sum(e.requests for e in result.endpoints.values()) and result.rps > 0
    assert result.tasks_not_run(TASK_REQUESTS) == []


def test_a_task_that_never_ran_is_named() -> None:
    home = EndpointStats("GET /", 3, 0, 1.0, 1, 2, 3, 1.5, 3)
    result = LoadResult("http://x", 0.0, 3.0, 3, 0, {"GET /": home}, [], [])
    assert result.tasks_not_run(["home", "checkout"]) == ["checkout"]
    with pytest.raises(KeyError, match="unknown shopper tasks"):
        result.tasks_not_run(["dance"])


@pytest.mark.parametrize(
    ("route", "status", "error"),
    [
        ("GET /cart", 500, "expected 200, got 500"),
        ("POST /cart", 200, "expected 302 to /cart, got 200"),
        ("POST /setCurrency", 200, "expected 302, got 200"),
        ("GET /product/{id}", 503, "expected 200, got 503"),
        ("POST /cart/checkout", 422, "expected 200, got 422"),
    ],
)
def test_a_broken_route_fails_requests_named_after_it(
    reference: FrontendServer, route: str, status: int, error: str
) -> None:
    reference.shop.faults[route] = status
    result = run_load(reference.url, users=3, spawn_rate=3, duration_s=2, wait_s=FAST)
    assert result.failures > 0
    assert {failure.name for failure in result.errors} == {route}, result.describe_failures()
    assert all(error in failure.error for failure in result.errors), result.describe_failures()
    assert result.endpoints[route].failures == result.failures


def test_a_frontend_that_loses_the_session_fails_view_cart(reference: FrontendServer) -> None:
    reference.shop.forget_sessions = True  # no session cookie: every request is a new, empty cart
    result = run_load(reference.url, users=3, spawn_rate=3, duration_s=2, wait_s=FAST)
    assert {failure.name for failure in result.errors} == {"GET /cart"}, result.describe_failures()
    assert all("the cart lacks" in failure.error for failure in result.errors)


def test_a_checkout_page_without_an_order_is_a_failure(reference: FrontendServer) -> None:
    reference.shop.faults["POST /cart/checkout"] = 200  # a 200 page that says nothing of an order
    result = run_load(reference.url, users=2, spawn_rate=2, duration_s=2, wait_s=FAST)
    assert {failure.error for failure in result.errors} == {"200 but the page confirms no order"}


def test_an_unreachable_frontend_is_a_failure_of_every_request() -> None:
    result = run_load(f"http://127.0.0.1:{free_port()}", users=2, spawn_rate=2, duration_s=1, wait_s=FAST)
    assert result.requests > 0 and result.failures == result.requests
    assert all("no response" in failure.error for failure in result.errors), result.describe_failures()


# --- the per-second series -------------------------------------------------------------------------


def test_the_series_has_one_sample_a_second_that_adds_up_to_the_totals(reference: FrontendServer) -> None:
    result = run_load(reference.url, users=3, spawn_rate=30, duration_s=3, wait_s=FAST)
    full = [s for s in result.series if s.end_s - s.start_s > 0.5]
    assert len(full) == 3 and all(0.9 < s.end_s - s.start_s < 1.5 for s in full)
    assert all(s.users == 3 and s.requests > 0 and s.p95_ms is not None for s in full)
    assert sum(s.requests for s in result.series) == result.requests
    assert result.series[0].started_at == pytest.approx(result.started_at, abs=0.05)
    assert result.series_csv().splitlines()[0] == "at,elapsed_s,users,requests,rps,p95_ms,failures"
    assert len(result.series_csv().splitlines()) == 1 + len(result.series)


def test_failures_are_placed_in_the_seconds_they_happened(reference: FrontendServer) -> None:
    """What a scenario needs for "no request failed during scale-out": failures within a time window."""
    with start_load(reference.url, users=3, spawn_rate=3, wait_s=FAST) as load:
        load.wait(2)
        broken_from = time.time()
        reference.shop.faults["GET /product/{id}"] = 500
        load.wait(1.5)
        reference.shop.faults.clear()
        broken_until = time.time()
        load.wait(2.5)
        so_far = load.snapshot()
    result = load.stop()
    assert so_far.running and not result.running
    before = [s for s in result.series if s.at < broken_from]
    after = [s for s in result.series if s.started_at > broken_until + 0.2]  # answers already on the way
    assert before and after and sum(s.failures for s in before + after) == 0
    assert result.failures_between(broken_from, broken_until) == result.failures > 0
    assert result.failed_endpoints_between(broken_from, broken_until) == {
        "GET /product/{id}": result.failures
    }
    assert result.requests_between(result.started_at, result.ended_at) == result.requests


def test_result_as_dict_is_plain_data(reference: FrontendServer) -> None:
    import json

    result = run_load(reference.url, users=1, spawn_rate=1, duration_s=1, wait_s=FAST)
    data = json.loads(json.dumps(result.as_dict()))
    assert data["requests"] == result.requests and data["endpoints"].keys() == result.endpoints.keys()
    assert len(data["series"]) == len(result.series)


def test_a_cart_page_may_list_a_product_by_id_or_by_name() -> None:
    assert page_lists("<li>SKU #LS4PSXUNUM</li>", "LS4PSXUNUM")
    assert page_lists("<li>1 × Salt &amp; Pepper Shakers</li>", "LS4PSXUNUM")
    assert page_lists("<li>1 × Tank Top</li>", "66VCHSJNUP")
    assert not page_lists("<li>1 × Tank Top</li>", "LS4PSXUNUM")


def test_card_numbers_need_a_valid_luhn_digit() -> None:
    assert valid_card("4432-8015-6152-0454") and valid_card("4111 1111 1111 1111")
    assert not valid_card("4432-8015-6152-0455") and not valid_card("4432")


def test_percentile_is_nearest_rank() -> None:
    values = [float(v) for v in range(1, 101)]
    assert (percentile(values, 0.5), percentile(values, 0.95), percentile(values, 0.99)) == (50, 95, 99)
    assert percentile([], 0.95) is None and percentile([7.0], 0.99) == 7.0


def summary(result: LoadResult) -> str:
    return f"{result.requests} requests, {result.describe_failures()}"


# --- the step load ---------------------------------------------------------------------------------


def test_the_step_shape_adds_users_each_step_and_ends_at_max_seconds() -> None:
    shape = StepLoadShape(step_users=5, step_seconds=10, spawn_rate=5, max_seconds=35, max_users=12)
    assert [shape.users_at(t) for t in (0, 9.9, 10, 25, 34.9, 35)] == [5, 5, 10, 12, 12, None]
    with pytest.raises(ValueError, match="must be positive"):
        StepLoadShape(step_users=0)


def test_a_run_with_the_step_shape_climbs_in_steps_and_ends_by_itself(reference: FrontendServer) -> None:
    shape = StepLoadShape(step_users=2, step_seconds=2, spawn_rate=20, max_seconds=6)
    started = time.monotonic()
    result = run_load(reference.url, users=0, spawn_rate=0, duration_s=60, shape=shape, wait_s=FAST)
    assert time.monotonic() - started < 10, "the shape did not end the run"
    users_at = {round(sample.end_s): sample.users for sample in result.series}
    assert [users_at[1], users_at[3], users_at[5]] == [2, 4, 6], users_at  # mid-step: a second from changes
    assert result.peak_users == 6 and result.failures == 0, summary(result)


def test_step_and_wait_settings_come_from_the_environment() -> None:
    env = {"BOUTIQUE_STEP_USERS": "20", "BOUTIQUE_STEP_SECONDS": "60", "BOUTIQUE_STEP_MAX_SECONDS": "600"}
    assert locustfile.step_settings(env) == {
        "step_users": 20,
        "step_seconds": 60.0,
        "spawn_rate": 5.0,
        "max_seconds": 600.0,
        "max_users": None,
    }
    assert locustfile.wait_bounds({}) == (1.0, 10.0)
    assert locustfile.wait_bounds({"BOUTIQUE_WAIT_MIN": "0", "BOUTIQUE_WAIT_MAX": "0.5"}) == (0.0, 0.5)
    with pytest.raises(ValueError, match="need 0 <= min <= max"):
        locustfile.wait_bounds({"BOUTIQUE_WAIT_MIN": "3", "BOUTIQUE_WAIT_MAX": "1"})


def test_every_gherkin_shopper_task_maps_to_requests_the_locustfile_makes() -> None:
    gherkin = "home, set currency, browse product, add to cart, view cart, checkout"
    assert list(TASK_REQUESTS) == [task.strip() for task in gherkin.split(",")]
    weights = {
        name: fn.locust_task_weight
        for name, fn in vars(locustfile.BoutiqueShopper).items()
        if hasattr(fn, "locust_task_weight")
    }
    assert weights == {
        "index": 1,
        "set_currency": 2,
        "browse_product": 10,
        "add_to_cart": 2,
        "view_cart": 3,
        "checkout": 1,
    }


def test_the_shoppers_checkout_form_is_valid_and_its_card_unexpired() -> None:
    today = datetime.date(2026, 12, 2)
    for _ in range(50):
        assert checkout_problems(locustfile.checkout_form(today), today) == []
    assert "the card has expired" in checkout_problems(
        {
            **locustfile.checkout_form(today),
            "credit_card_expiration_year": "2026",
            "credit_card_expiration_month": "11",
        },
        today,
    )


# --- `locust -f` at a terminal ---------------------------------------------------------------------


def locust_command(host: str, *args: str) -> list[str]:
    return [str(LOCUST), "-f", "loadtests/locustfile.py", "--host", host, *args]


def test_locust_headless_runs_the_locustfile_on_its_own(reference_process: str) -> None:
    env = {**os.environ, "BOUTIQUE_WAIT_MIN": "0", "BOUTIQUE_WAIT_MAX": "0.1"}
    command = locust_command(
        reference_process, "--headless", "-t", "3s", "-u", "3", "-r", "3", "--only-summary"
    )
    proc = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)
    output = proc.stdout + proc.stderr
    assert proc.returncode == 0, output[-3000:]  # locust exits 1 when any request failed
    for name in ("/product/{id}", "/cart/checkout", "/setCurrency", "Aggregated"):
        assert name in output, output[-3000:]


def test_locust_follows_the_step_shape_when_asked(reference_process: str) -> None:
    env = {
        **os.environ,
        "BOUTIQUE_WAIT_MIN": "0",
        "BOUTIQUE_WAIT_MAX": "0.1",
        "BOUTIQUE_STEP_USERS": "2",
        "BOUTIQUE_STEP_SECONDS": "1",
        "BOUTIQUE_STEP_SPAWN_RATE": "10",
        "BOUTIQUE_STEP_MAX_SECONDS": "3",
    }
    command = locust_command(reference_process, "--headless", "--only-summary")
    proc = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)
    output = proc.stdout + proc.stderr
    assert proc.returncode == 0, output[-3000:]
    assert "Shape test updating to 4 users" in output and "Shape test stopping" in output, output[-3000:]


def test_locust_serves_its_web_ui_for_a_person_at_a_terminal(reference_process: str) -> None:
    port = free_port()
    command = locust_command(reference_process, "--web-host", "127.0.0.1", "--web-port", str(port))
    process = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        page = web_page(f"http://127.0.0.1:{port}/", process)
        assert page.status_code == 200 and "locust" in page.text.lower()
    finally:
        stop(process)


def web_page(url: str, process: subprocess.Popen[bytes], timeout_s: float = 30) -> requests.Response:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"locust exited with {process.returncode} instead of serving {url}")
        try:
            return requests.get(url, timeout=2)
        except requests.ConnectionError:
            time.sleep(0.2)
    pytest.fail(f"no web UI at {url} within {timeout_s} s")


def test_the_bench_prints_both_runs_and_the_overhead_against_the_standin(
    standin_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert bench.main(["--host", standin_url, "--users", "2", "--seconds", "2", "--rounds", "1"]) == 0
    lines = capsys.readouterr().out.splitlines()
    runs = [line for line in lines if "req/s" in line and "requests" in line]
    assert [line.split()[0] for line in runs] == ["plain", "loadtests.runner.run_load"], lines
    assert all(" 0 failed" in line for line in runs), lines
    assert any(line.startswith("runner overhead vs plain locust:") for line in lines), lines


def test_shoppers_name_the_virtual_host_an_ingress_routes_by(reference: FrontendServer) -> None:
    reference.shop.hosts.clear()
    with start_load(reference.url, users=2, spawn_rate=2, wait_s=FAST, virtual_host="boutique.local") as load:
        load.wait(1.5)
    result = load.stop()
    assert result.requests and not result.failures, result.describe_failures()
    assert set(reference.shop.hosts) == {"boutique.local"}, reference.shop.hosts
