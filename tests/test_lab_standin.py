"""The stand-in service, run as local processes on 127.0.0.1 (no cluster): each role on its protocol,
the frontend's routes and forms, backend failures, fault switches, CPU per request, and its images.

Backends are found by name through the system resolver, as pods find them through cluster DNS: here the
names are ``localhost`` (the host's /etc/hosts).
"""

from __future__ import annotations

import datetime
import hashlib
import io
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import tarfile
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import requests
from ports import free_port

from provisioning.lab.services import images

PRODUCT_IDS = (
    "0PUK6V6EV0 1YMWWN1N4O 2ZYFJ3GM2N 66VCHSJNUP 6E92ZMYYFZ 9SIQT8TOJO L9ECAV7KIM LS4PSXUNUM OLJCESPC7Z"
)
BACKENDS = {
    "productcatalogservice": "PRODUCT_CATALOG_SERVICE_ADDR",
    "currencyservice": "CURRENCY_SERVICE_ADDR",
    "cartservice": "CART_SERVICE_ADDR",
    "recommendationservice": "RECOMMENDATION_SERVICE_ADDR",
    "shippingservice": "SHIPPING_SERVICE_ADDR",
    "checkoutservice": "CHECKOUT_SERVICE_ADDR",
    "adservice": "AD_SERVICE_ADDR",
    "paymentservice": "PAYMENT_SERVICE_ADDR",
    "emailservice": "EMAIL_SERVICE_ADDR",
}
START_TIMEOUT = 10.0


@pytest.fixture(scope="module")
def binary() -> Path:
    return images.build_standin()


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


@dataclass
class Standin:
    role: str
    port: int
    proc: subprocess.Popen[bytes]
    log: Path

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def output(self) -> str:
        return self.log.read_text()

    def stop(self) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        return self.proc.wait(timeout=5)


@dataclass
class Processes:
    """Stand-ins started by one test, all stopped after it."""

    binary: Path
    logs: Path
    running: list[Standin] = field(default_factory=list)

    def spawn(self, role: str, port: int, env: dict[str, str]) -> Standin:
        log = self.logs / f"{role}-{port}-{len(self.running)}.log"
        full_env = {
            "PATH": os.environ["PATH"],
            "SERVICE": role,
            "LISTEN_HOST": "127.0.0.1",
            "BACKEND_TIMEOUT_MS": "8000",  # a busy machine is not a failed backend
            **env,
        }
        full_env.setdefault("PORT", str(port))
        with log.open("wb") as out:
            proc = subprocess.Popen([str(self.binary)], env=full_env, stdout=out, stderr=subprocess.STDOUT)
        standin = Standin(role, port, proc, log)
        self.running.append(standin)
        return standin

    def start(self, role: str, env: dict[str, str] | None = None, port: int | None = None) -> Standin:
        standin = self.spawn(role, port or free_port(), env or {})
        wait_listening(standin)
        return standin

    def stop_all(self) -> None:
        for standin in self.running:
            if standin.proc.poll() is None:
                standin.proc.kill()
                standin.proc.wait(timeout=5)


def wait_listening(standin: Standin) -> None:
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        if standin.proc.poll() is not None:
            raise AssertionError(f"{standin.role} exited {standin.proc.returncode}: {standin.output()}")
        try:
            socket.create_connection(("127.0.0.1", standin.port), timeout=0.5).close()
            return
        except OSError:
            time.sleep(0.05)
    raise AssertionError(f"{standin.role} did not listen on {standin.port}: {standin.output()}")


@pytest.fixture
def processes(binary: Path, tmp_path: Path) -> Iterator[Processes]:
    running = Processes(binary, tmp_path)
    yield running
    running.stop_all()


def addresses(ports: dict[str, int]) -> dict[str, str]:
    """The env a pod gets: *_ADDR by name (here a name this host resolves, where a pod has its Service's)."""
    env = {}
    for role, port in ports.items():
        variable = "REDIS_ADDR" if role == "redis-cart" else BACKENDS[role]
        env[variable] = f"localhost:{port}"
    return env


@dataclass
class Shop:
    frontend: Standin
    backends: dict[str, Standin]
    env: dict[str, str]


def start_shop(processes: Processes, frontend_env: dict[str, str] | None = None) -> Shop:
    ports = {role: free_port() for role in [*BACKENDS, "redis-cart"]}
    env = addresses(ports)
    backends = {}
    for role, port in ports.items():
        extra = {"STANDIN_REDIS_PORT": str(port)} if role == "redis-cart" else {}
        backends[role] = processes.spawn(role, port, {**env, **extra})
    for backend in backends.values():
        wait_listening(backend)
    frontend = processes.start("frontend", {**env, **(frontend_env or {})})
    return Shop(frontend, backends, env)


@pytest.fixture
def shop(processes: Processes) -> Shop:
    return start_shop(processes)


def browser() -> requests.Session:
    session = requests.Session()
    session.headers["Connection"] = "close"
    return session


def get(session: requests.Session, url: str) -> requests.Response:
    return session.get(url, allow_redirects=False, timeout=10)


def post(session: requests.Session, url: str, form: dict[str, str]) -> requests.Response:
    return session.post(url, data=form, allow_redirects=False, timeout=10)


def order(**changes: str) -> dict[str, str]:
    form = {
        "email": "someone@example.com",
        "street_address": "1600 Amphitheatre Parkway",
        "zip_code": "94043",
        "city": "Mountain View",
        "state": "CA",
        "country": "United States",
        "credit_card_number": "4432-8015-6152-6775",
        "credit_card_expiration_month": "1",
        "credit_card_expiration_year": str(datetime.date.today().year + 1),
        "credit_card_cvv": "672",
    }
    form.update(changes)
    return {k: v for k, v in form.items() if v != "<missing>"}


def probe(binary: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(binary), "probe", *args], capture_output=True, text=True, timeout=10)


# The frontend's routes


def test_home_sets_a_session_cookie_and_says_it_is_the_stand_in(shop: Shop) -> None:
    session = browser()
    page = get(session, shop.frontend.url + "/")
    assert page.status_code == 200
    assert "Online Boutique (stand-in)" in page.text
    assert session.cookies.get("shop_session-id")
    again = get(session, shop.frontend.url + "/")
    assert "shop_session-id" not in again.headers.get("Set-Cookie", "")
    assert "http GET / 200" in shop.frontend.output()


def test_every_product_has_a_page_and_an_unknown_one_is_404(shop: Shop) -> None:
    session = browser()
    for product_id in PRODUCT_IDS.split():
        assert get(session, f"{shop.frontend.url}/product/{product_id}").status_code == 200, product_id
    assert get(session, shop.frontend.url + "/product/NOSUCHTHING").status_code == 404


def test_cart_add_view_and_empty(shop: Shop) -> None:
    session = browser()
    added = post(session, shop.frontend.url + "/cart", {"product_id": "OLJCESPC7Z", "quantity": "2"})
    assert (added.status_code, added.headers["Location"]) == (302, "/cart")
    cart = get(session, shop.frontend.url + "/cart")
    assert cart.status_code == 200
    assert '2 × <a href="/product/OLJCESPC7Z">Sunglasses</a>' in cart.text
    emptied = post(session, shop.frontend.url + "/cart/empty", {})
    assert emptied.status_code == 302
    assert "Sunglasses" not in get(session, shop.frontend.url + "/cart").text


def test_carts_are_per_session(shop: Shop) -> None:
    alice, bob = browser(), browser()
    post(alice, shop.frontend.url + "/cart", {"product_id": "6E92ZMYYFZ", "quantity": "1"})
    assert "Mug" in get(alice, shop.frontend.url + "/cart").text
    assert "Mug" not in get(bob, shop.frontend.url + "/cart").text


@pytest.mark.parametrize(
    "form",
    [
        {"product_id": "OLJCESPC7Z", "quantity": "0"},
        {"product_id": "OLJCESPC7Z", "quantity": "11"},
        {"product_id": "OLJCESPC7Z", "quantity": "two"},
        {"product_id": "OLJCESPC7Z"},
        {"product_id": "NOSUCHTHING", "quantity": "1"},
        {"quantity": "1"},
    ],
)
def test_adding_to_the_cart_with_a_bad_form_is_422(shop: Shop, form: dict[str, str]) -> None:
    assert post(browser(), shop.frontend.url + "/cart", form).status_code == 422


def test_set_currency_sets_its_cookie_and_redirects_back(shop: Shop) -> None:
    session = browser()
    referer = shop.frontend.url + "/product/OLJCESPC7Z"
    changed = session.post(
        shop.frontend.url + "/setCurrency",
        data={"currency_code": "JPY"},
        headers={"Referer": referer},
        allow_redirects=False,
        timeout=10,
    )
    assert (changed.status_code, changed.headers["Location"]) == (302, referer)
    assert session.cookies.get("shop_currency") == "JPY"
    assert "JPY" in get(session, shop.frontend.url + "/").text
    for currency in ("EUR", "USD", "CAD", "GBP", "TRY"):
        assert (
            post(session, shop.frontend.url + "/setCurrency", {"currency_code": currency}).status_code == 302
        )
    assert post(session, shop.frontend.url + "/setCurrency", {"currency_code": "XXX"}).status_code == 422


def test_logout_clears_the_cookies(shop: Shop) -> None:
    session = browser()
    get(session, shop.frontend.url + "/")
    post(session, shop.frontend.url + "/setCurrency", {"currency_code": "EUR"})
    out = get(session, shop.frontend.url + "/logout")
    assert (out.status_code, out.headers["Location"]) == (302, "/")
    assert not session.cookies.get("shop_session-id")
    assert not session.cookies.get("shop_currency")


def test_checkout_places_the_order_and_empties_the_cart(shop: Shop) -> None:
    session = browser()
    post(session, shop.frontend.url + "/cart", {"product_id": "1YMWWN1N4O", "quantity": "1"})
    placed = post(session, shop.frontend.url + "/cart/checkout", order())
    assert placed.status_code == 200, placed.text
    assert "Your order is complete" in placed.text
    assert "Watch" not in get(session, shop.frontend.url + "/cart").text


LAST_YEAR = str(datetime.date.today().year - 1)


@pytest.mark.parametrize(
    "changes",
    [
        *({name: "<missing>"} for name in order()),
        {"email": "not-an-email"},
        {"zip_code": "abc"},
        {"credit_card_number": "4432-8015-6152-677X"},
        {"credit_card_number": "1234"},
        {"credit_card_expiration_month": "0"},
        {"credit_card_expiration_month": "13"},
        {"credit_card_expiration_year": LAST_YEAR},
        {"credit_card_cvv": "12"},
    ],
    ids=str,
)
def test_checkout_with_a_bad_form_is_422(shop: Shop, changes: dict[str, str]) -> None:
    assert post(browser(), shop.frontend.url + "/cart/checkout", order(**changes)).status_code == 422


def test_healthz_and_wrong_methods(shop: Shop) -> None:
    session = browser()
    health = get(session, shop.frontend.url + "/_healthz")
    assert (health.status_code, health.text) == (200, "ok")
    assert post(session, shop.frontend.url + "/", {}).status_code == 405
    assert get(session, shop.frontend.url + "/cart/checkout").status_code == 405


def test_metrics_count_requests_by_route_and_code(shop: Shop) -> None:
    session = browser()
    get(session, shop.frontend.url + "/")
    get(session, shop.frontend.url + "/product/NOSUCHTHING")
    text = get(session, shop.frontend.url + "/metrics").text
    assert 'standin_http_requests_total{route="/",method="GET",code="200"} 1' in text
    assert 'standin_http_requests_total{route="/product/{id}",method="GET",code="404"} 1' in text
    assert 'standin_http_request_duration_seconds_count{route="/"} 1' in text


# Backend failures


def test_a_stopped_backend_makes_the_page_500(shop: Shop) -> None:
    session = browser()
    assert get(session, shop.frontend.url + "/").status_code == 200
    assert shop.backends["productcatalogservice"].stop() == 0
    page = get(session, shop.frontend.url + "/")
    assert page.status_code == 500
    assert "PRODUCT_CATALOG_SERVICE_ADDR" in page.text


def test_every_backend_of_a_page_is_called(shop: Shop) -> None:
    session = browser()
    get(session, shop.frontend.url + "/product/OLJCESPC7Z")
    for role in (
        "productcatalogservice",
        "currencyservice",
        "cartservice",
        "recommendationservice",
        "adservice",
    ):
        assert 'grpc Check service="hipstershop.' in shop.backends[role].output(), role
    assert "redis PING" in shop.backends["redis-cart"].output()
    assert "grpc Check" not in shop.backends["checkoutservice"].output()


def test_the_frontend_recovers_when_a_backend_comes_back(processes: Processes, shop: Shop) -> None:
    session = browser()
    catalog = shop.backends["productcatalogservice"]
    catalog.stop()
    assert get(session, shop.frontend.url + "/").status_code == 500
    processes.start("productcatalogservice", shop.env, port=catalog.port)
    deadline = time.monotonic() + 5
    while get(session, shop.frontend.url + "/").status_code != 200:
        assert time.monotonic() < deadline, "the frontend did not reconnect within 5 s"
        time.sleep(0.2)


def test_a_hung_backend_makes_the_page_500_after_the_timeout(processes: Processes) -> None:
    backend = processes.start("currencyservice")
    env = {
        "CURRENCY_SERVICE_ADDR": f"localhost:{backend.port}",
        "BACKEND_TIMEOUT_MS": "500",
    }
    frontend = processes.start("frontend", env)
    session = browser()
    assert get(session, frontend.url + "/").status_code == 200
    backend.proc.send_signal(signal.SIGSTOP)
    try:
        started = time.monotonic()
        page = get(session, frontend.url + "/")
        assert page.status_code == 500
        assert "DeadlineExceeded" in page.text
        assert 0.5 <= time.monotonic() - started < 5
    finally:
        backend.proc.send_signal(signal.SIGCONT)
    assert get(session, frontend.url + "/").status_code == 200


def test_a_stopped_ad_service_only_loses_the_ad(shop: Shop) -> None:
    shop.backends["adservice"].stop()
    assert get(browser(), shop.frontend.url + "/").status_code == 200


def test_checkout_fails_when_the_checkout_services_own_backend_is_down(shop: Shop) -> None:
    shop.backends["paymentservice"].stop()
    session = browser()
    assert get(session, shop.frontend.url + "/").status_code == 200
    failed = post(session, shop.frontend.url + "/cart/checkout", order())
    assert failed.status_code == 500
    assert "PAYMENT_SERVICE_ADDR" in failed.text


def test_cart_fails_when_redis_is_down(shop: Shop) -> None:
    shop.backends["redis-cart"].stop()
    page = get(browser(), shop.frontend.url + "/cart")
    assert page.status_code == 500
    assert "REDIS_ADDR" in page.text


def test_a_backend_with_an_empty_address_is_not_called(processes: Processes) -> None:
    frontend = processes.start("frontend", {"PRODUCT_CATALOG_SERVICE_ADDR": ""})
    session = browser()
    assert get(session, frontend.url + "/").status_code == 200
    assert get(session, frontend.url + "/cart").status_code == 200


def test_backends_are_found_by_name_through_the_system_resolver(processes: Processes) -> None:
    """No fallback to the kubelet's <NAME>_SERVICE_HOST: a name the resolver cannot answer is a 500."""
    backend = processes.start("currencyservice")
    env = {
        "CURRENCY_SERVICE_ADDR": f"currencyservice.invalid:{backend.port}",
        "CURRENCYSERVICE_SERVICE_HOST": "127.0.0.1",
    }
    unresolved = processes.start("frontend", env)
    assert get(browser(), unresolved.url + "/").status_code == 500
    resolved = processes.start("frontend", {"CURRENCY_SERVICE_ADDR": f"localhost:{backend.port}"})
    assert get(browser(), resolved.url + "/").status_code == 200


def check_durations(log: str, service: str) -> list[float]:
    """How long the server took for each health Check of ``service`` (from its log lines)."""
    pattern = re.compile(rf'grpc Check service="{re.escape(service)}" .* took=(\S+)')
    return [parse_go_duration(m.group(1)) for m in pattern.finditer(log)]


def parse_go_duration(text: str) -> float:
    for unit, scale in (("ms", 1e-3), ("µs", 1e-6), ("ns", 1e-9), ("s", 1.0)):
        if text.endswith(unit):
            return float(text.removesuffix(unit)) * scale
    raise ValueError(text)


def test_extra_latency_slows_the_rpcs_but_not_the_probes(processes: Processes, binary: Path) -> None:
    backend = processes.start("productcatalogservice", {"EXTRA_LATENCY": "400ms"})
    assert probe(binary, "grpc", f"127.0.0.1:{backend.port}").returncode == 0
    env = {
        "PRODUCT_CATALOG_SERVICE_ADDR": f"localhost:{backend.port}",
    }
    frontend = processes.start("frontend", env)
    started = time.monotonic()
    assert get(browser(), frontend.url + "/").status_code == 200
    assert time.monotonic() - started >= 0.4
    probes = check_durations(backend.output(), "")
    rpcs = check_durations(backend.output(), "hipstershop.ProductCatalogService")
    assert probes and all(took < 0.4 for took in probes)
    assert rpcs and all(took >= 0.4 for took in rpcs)


# gRPC, Redis, probes and the fault switches


def test_grpc_backends_answer_health_checks(processes: Processes, binary: Path) -> None:
    backend = processes.start("checkoutservice")
    address = f"127.0.0.1:{backend.port}"
    assert probe(binary, "grpc", address).stdout.strip() == "SERVING"
    assert probe(binary, "grpc", address, "hipstershop.CheckoutService").returncode == 0
    unknown = probe(binary, "grpc", address, "hipstershop.NoSuchService")
    assert unknown.returncode == 1
    assert "NotFound" in unknown.stderr
    assert probe(binary, "grpc-watch", address).stdout.strip() == "SERVING"
    assert (
        probe(binary, "grpc-watch", address, "hipstershop.NoSuchService").stdout.strip() == "SERVICE_UNKNOWN"
    )


def port_is_free(port: int) -> bool:
    with socket.socket() as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


@pytest.mark.parametrize(("role", "port"), [("cartservice", 7070), ("adservice", 9555)])
def test_services_without_a_port_variable_use_their_upstream_port(
    processes: Processes, binary: Path, role: str, port: int
) -> None:
    if not port_is_free(port):
        pytest.skip(f"port {port} is taken on this machine")
    processes.start(role, {"PORT": ""}, port=port)
    assert probe(binary, "grpc", f"127.0.0.1:{port}").returncode == 0


def test_fail_readiness_makes_grpc_not_serving_and_healthz_503(processes: Processes, binary: Path) -> None:
    backend = processes.start("paymentservice", {"FAIL_READINESS": "1"})
    result = probe(binary, "grpc", f"127.0.0.1:{backend.port}")
    assert (result.returncode, result.stdout.strip()) == (1, "NOT_SERVING")
    frontend = processes.start("frontend", {"FAIL_READINESS": "1"})
    assert get(browser(), frontend.url + "/_healthz").status_code == 503


def test_redis_answers_ping(processes: Processes, binary: Path) -> None:
    port = free_port()
    redis = processes.start("redis-cart", {"STANDIN_REDIS_PORT": str(port)}, port=port)
    with socket.create_connection(("127.0.0.1", redis.port), timeout=5) as conn:
        conn.sendall(b"*1\r\n$4\r\nPING\r\n")
        assert conn.recv(64) == b"+PONG\r\n"
        conn.sendall(b"PING\r\n")
        assert conn.recv(64) == b"+PONG\r\n"
    assert probe(binary, "redis", f"127.0.0.1:{redis.port}").stdout.strip() == "PONG"


def test_http_probe_and_waiting_for_the_frontend(processes: Processes, binary: Path) -> None:
    port = free_port()
    url = f"http://localhost:{port}/_healthz"
    env = dict(os.environ)
    down = subprocess.run([str(binary), "probe", "http", url], env=env, capture_output=True, timeout=10)
    assert down.returncode == 1
    waiting = subprocess.Popen([str(binary), "probe", "wait-http", url, "20"], env=env)
    time.sleep(1.5)
    assert waiting.poll() is None
    processes.start("frontend", port=port)
    assert waiting.wait(timeout=10) == 0
    unready = processes.start("frontend", {"FAIL_READINESS": "1"})
    assert probe(binary, "http", unready.url + "/_healthz").returncode == 1


def test_crash_after_seconds_exits_1(processes: Processes) -> None:
    at_once = processes.spawn("currencyservice", free_port(), {"CRASH_AFTER_SECONDS": "0"})
    assert at_once.proc.wait(timeout=5) == 1
    later = processes.start("currencyservice", {"CRASH_AFTER_SECONDS": "1"})
    started = time.monotonic()
    assert later.proc.wait(timeout=5) == 1
    assert time.monotonic() - started < 2
    assert "crashing as asked" in later.output()


@pytest.mark.parametrize("role", ["frontend", "shippingservice", "redis-cart", "loadgenerator", "pause"])
def test_sigterm_exits_0_within_a_second(processes: Processes, role: str) -> None:
    port = free_port()
    standin = processes.spawn(role, port, {"STANDIN_REDIS_PORT": str(port), "FRONTEND_ADDR": ""})
    if role not in ("loadgenerator", "pause"):
        wait_listening(standin)
    else:
        time.sleep(0.3)
    standin.proc.send_signal(signal.SIGTERM)
    assert standin.proc.wait(timeout=1.0) == 0


def test_an_unknown_role_is_refused(processes: Processes) -> None:
    standin = processes.spawn("no-such-service", free_port(), {})
    assert standin.proc.wait(timeout=5) == 2
    assert "unknown SERVICE" in standin.output()


def test_each_request_costs_real_cpu(processes: Processes) -> None:
    backend = processes.start("productcatalogservice", {"CPU_MS_PER_REQUEST": "20"})
    env = {
        "CPU_MS_PER_REQUEST": "20",
        "PRODUCT_CATALOG_SERVICE_ADDR": f"localhost:{backend.port}",
    }
    frontend = processes.start("frontend", env)
    session = browser()
    get(session, frontend.url + "/")
    frontend_before, backend_before = cpu_seconds(frontend.proc.pid), cpu_seconds(backend.proc.pid)
    for _ in range(25):
        assert get(session, frontend.url + "/").status_code == 200
    assert cpu_seconds(frontend.proc.pid) - frontend_before >= 0.35
    assert cpu_seconds(backend.proc.pid) - backend_before >= 0.35


def test_the_load_generator_shops_at_the_frontend(processes: Processes) -> None:
    frontend = processes.start("frontend")
    env = {
        "FRONTEND_ADDR": f"localhost:{frontend.port}",
        "USERS": "3",
        "RATE": "10",
    }
    shopper = processes.spawn("loadgenerator", 0, env)
    deadline = time.monotonic() + 8
    while time.monotonic() < deadline and frontend.output().count("http ") < 3:
        time.sleep(0.2)
    assert frontend.output().count("http ") >= 3, shopper.output()
    assert "load: " in shopper.output()


# Build and images


def test_the_build_is_cached_and_keyed_by_the_source(binary: Path, tmp_path: Path) -> None:
    started = time.monotonic()
    assert images.build_standin() == binary
    assert time.monotonic() - started < 5
    copy = tmp_path / "standin"
    copy.mkdir()
    for name in ("go.mod", "go.sum", "main.go"):
        (copy / name).write_bytes((images.STANDIN_SOURCE / name).read_bytes())
    before = images.source_hash(copy)
    (copy / "main.go").write_text((copy / "main.go").read_text() + "\n// changed\n")
    assert images.source_hash(copy) != before


def program_header_types(elf: bytes) -> list[int]:
    assert elf[:5] == b"\x7fELF\x02", "not a 64-bit ELF file"
    table, entry_size, count = (
        int.from_bytes(elf[0x20:0x28], "little"),
        int.from_bytes(elf[0x36:0x38], "little"),
        int.from_bytes(elf[0x38:0x3A], "little"),
    )
    return [int.from_bytes(elf[table + i * entry_size :][:4], "little") for i in range(count)]


def test_the_binary_is_static(binary: Path) -> None:
    pt_interp, pt_dynamic = 3, 2
    types = program_header_types(binary.read_bytes())
    assert types
    assert pt_interp not in types and pt_dynamic not in types


def test_old_builds_and_their_archives_are_pruned(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(images.recipes, "CACHE_ROOT", tmp_path)
    (tmp_path / "images").mkdir()
    for age, name in enumerate(("newest", "newer", "old")):
        directory = tmp_path / f"standin-{name}"
        directory.mkdir()
        digest = hashlib.sha256(name.encode()).hexdigest()
        (directory / "manifest.json").write_text(json.dumps({"sha256": {"standin": digest}}))
        os.utime(directory, (time.time() - age * 60, time.time() - age * 60))
        (tmp_path / "images" / f"standin-{digest[:12]}-tags.tar").write_bytes(b"")
    images.prune_stale_builds(keep=2)
    assert sorted(p.name for p in tmp_path.glob("standin-*")) == ["standin-newer", "standin-newest"]
    assert len(list((tmp_path / "images").glob("*.tar"))) == 2


def test_the_image_archive_is_a_docker_archive(binary: Path, tmp_path: Path) -> None:
    tags = images.boutique_tags("abc1234")
    assert len(tags) == 13
    assert tags["registry.k8s.io/pause:3.10"] == "pause"
    out = images.image_archive(tags, tmp_path / "images.tar", binary)
    with tarfile.open(out) as archive:
        files = {m.name: archive.extractfile(m).read() for m in archive.getmembers() if m.isfile()}
    manifest = json.loads(files["manifest.json"])
    assert sorted(tag for entry in manifest for tag in entry["RepoTags"]) == sorted(tags)
    layers = {layer for entry in manifest for layer in entry["Layers"]}
    assert len(layers) == 1
    layer = files[layers.pop()]
    for entry in manifest:
        config_bytes = files[entry["Config"]]
        assert entry["Config"] == hashlib.sha256(config_bytes).hexdigest() + ".json"
        config = json.loads(config_bytes)
        assert config["rootfs"]["diff_ids"] == ["sha256:" + hashlib.sha256(layer).hexdigest()]
        assert config["config"]["Entrypoint"] == ["/standin"]
        assert f"SERVICE={tags[entry['RepoTags'][0]]}" in config["config"]["Env"]
        assert config["os"] == "linux"
    with tarfile.open(fileobj=io.BytesIO(layer)) as rootfs:
        members = {m.name: m for m in rootfs.getmembers()}
        assert set(members) == {"etc", "etc/passwd", "standin"}
        assert members["standin"].mode & 0o111
        assert rootfs.extractfile("standin").read() == binary.read_bytes()
        passwd = rootfs.extractfile("etc/passwd").read().decode()
    assert any(line.split(":")[2] == "1000" for line in passwd.splitlines())


def test_the_image_archive_is_reproducible(binary: Path, tmp_path: Path) -> None:
    tags = {"registry.local/boutique/frontend:x": "frontend"}
    first = images.image_archive(tags, tmp_path / "a.tar", binary).read_bytes()
    second = images.image_archive(tags, tmp_path / "b.tar", binary).read_bytes()
    assert first == second


@pytest.fixture
def containerd(tmp_path: Path) -> Iterator[str]:
    """A throwaway containerd (own root, state and socket under tmp_path); stopped and removed after."""
    if os.geteuid() != 0 or not shutil.which("containerd") or not shutil.which("ctr"):
        pytest.skip("needs root and Debian's containerd package (containerd, ctr)")
    base = Path(tempfile.mkdtemp(prefix="standin-ctrd-", dir="/tmp"))
    socket_path = base / "containerd.sock"
    config = base / "config.toml"
    config.write_text(
        f'version = 2\nroot = "{base}/root"\nstate = "{base}/state"\n'
        'disabled_plugins = ["io.containerd.grpc.v1.cri"]\n'
        f'[grpc]\n  address = "{socket_path}"\n[metrics]\n  address = ""\n'
    )
    with (tmp_path / "containerd.log").open("wb") as log:
        daemon = subprocess.Popen(["containerd", "--config", str(config)], stdout=log, stderr=log)
    try:
        deadline = time.monotonic() + 15
        while not socket_path.exists() and daemon.poll() is None and time.monotonic() < deadline:
            time.sleep(0.1)
        if not socket_path.exists():
            pytest.skip(f"containerd did not start: {(tmp_path / 'containerd.log').read_text()[-400:]}")
        yield str(socket_path)
    finally:
        daemon.terminate()
        daemon.wait(timeout=10)
        for mount in sorted(m.split()[1] for m in Path("/proc/mounts").read_text().splitlines()):
            if mount.startswith(str(base)):
                subprocess.run(["umount", mount], check=False)
        shutil.rmtree(base, ignore_errors=True)


def test_containerd_imports_the_image_archive(binary: Path, tmp_path: Path, containerd: str) -> None:
    tags = images.boutique_tags("t1")
    archive = images.image_archive(tags, tmp_path / "images.tar", binary)
    ctr = ["ctr", "--address", containerd, "-n", "k8s.io", "images"]
    imported = subprocess.run([*ctr, "import", str(archive)], capture_output=True, text=True, timeout=120)
    assert imported.returncode == 0, imported.stderr
    listed = subprocess.run([*ctr, "ls", "-q"], capture_output=True, text=True, timeout=30, check=True)
    assert set(tags) <= set(listed.stdout.split())
