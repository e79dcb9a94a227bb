"""GET /metrics: request counts and latency by route template, requests in flight, and business counters."""

import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.conftest import sqlite_only
from tests.helpers import PASSWORD, create_product, place_order, register
from tests.prometheus_text import sample_value, samples

REQUESTS = "http_requests_total"
DURATION = "http_request_duration_seconds"


# Metrics do not depend on the database; one backend is enough.
pytestmark = sqlite_only


async def scrape(client) -> str:
    response = await client.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    return response.text


@pytest.mark.parametrize(
    ("method", "path", "handler", "status"),
    [
        pytest.param("GET", "/api/v1/products/5", "/api/v1/products/{id}", "401", id="template-not-raw-path"),
        pytest.param("GET", "/no/such/path/5", "unmatched", "404", id="unknown-path"),
        pytest.param("DELETE", "/health", "/health", "405", id="wrong-method"),
    ],
)
async def test_each_request_is_counted_and_timed_by_route_template(client, method, path, handler, status):
    before = await scrape(client)
    response = await client.request(method, path)
    after = await scrape(client)

    assert response.status_code == int(status)
    labels = {"method": method, "handler": handler}
    assert (
        sample_value(after, REQUESTS, **labels, status=status) - sample_value(before, REQUESTS, **labels, status=status)
        == 1
    )
    assert sample_value(after, f"{DURATION}_count", **labels) - sample_value(before, f"{DURATION}_count", **labels) == 1
    assert sample_value(after, f"{DURATION}_bucket", **labels, le="+Inf") >= 1
    if path != handler:
        assert path not in {series["handler"] for series in samples(after, REQUESTS)}


def _counts_by_series(text: str, name: str) -> dict[tuple[tuple[str, str], ...], float]:
    return {
        tuple(sorted(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if sample.name == name
    }


async def test_handler_labels_are_route_templates_only(client):
    # The registry is the process's: other tests' apps (with routes of their own) count into it too, so only the
    # series these requests moved are judged.
    before = {name: _counts_by_series(await scrape(client), name) for name in (REQUESTS, f"{DURATION}_count")}
    for path in ("/a", "/b/1", "/api/v1/nothing/here", "/api/v1/products/1/extra", "/api/v1/products/1"):
        await client.get(path)
    text = await scrape(client)

    documented = (await client.get("/openapi.json")).json()["paths"].keys()
    # The docs pages and their assets are the app's own routes, outside the OpenAPI document.
    undocumented = {route.path for route in client.app.routes if hasattr(route, "path")}
    templates = documented | undocumented | {"unmatched"}
    for name in (REQUESTS, f"{DURATION}_count"):
        moved = {
            dict(series)["handler"]
            for series, value in _counts_by_series(text, name).items()
            if value > before[name].get(series, 0)
        }
        assert {"unmatched", "/api/v1/products/{id}"} <= moved
        assert moved <= templates, moved - templates


async def test_requests_in_flight_rise_and_fall(client):
    # While /metrics is being answered, it is the one request in flight; a gauge that never fell would grow.
    for _ in range(3):
        assert sample_value(await scrape(client), "http_requests_in_flight") == 1


async def test_orders_placed_and_refused_are_counted(client, admin_headers, user_headers):
    product = await create_product(client, admin_headers, stock=1)
    refused = {"code": "insufficient_stock"}

    before = await scrape(client)
    assert (await place_order(client, user_headers, [(product["id"], 1)])).status_code == 201
    between = await scrape(client)
    assert (await place_order(client, user_headers, [(product["id"], 1)])).status_code == 409
    after = await scrape(client)

    placed = [sample_value(text, "shop_orders_placed_total") for text in (before, between, after)]
    assert placed[1] - placed[0] == 1
    assert placed[2] == placed[1]
    assert (
        sample_value(after, "shop_orders_refused_total", **refused)
        - sample_value(between, "shop_orders_refused_total", **refused)
        == 1
    )


async def test_logins_are_counted_by_outcome(client):
    user = await register(client)
    before = await scrape(client)
    good = await client.post("/api/v1/auth/login", json={"username": user["username"], "password": PASSWORD})
    bad = await client.post("/api/v1/auth/login", json={"username": user["username"], "password": "wrong-password"})
    after = await scrape(client)

    assert (good.status_code, bad.status_code) == (200, 401)
    outcomes = ("success", "invalid_credentials")
    deltas = {
        outcome: sample_value(after, "shop_logins_total", outcome=outcome)
        - sample_value(before, "shop_logins_total", outcome=outcome)
        for outcome in outcomes
    }
    assert deltas == dict.fromkeys(outcomes, 1)
