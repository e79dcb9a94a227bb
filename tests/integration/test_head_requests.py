"""HEAD on every GET route: GET's status and headers, Content-Length included, and no body; on each backend."""

import pytest
from httpx import AsyncClient, Response

from tests.helpers import create_product
from tests.prometheus_text import sample_value

PRODUCTS = "/api/v1/products"


def headers_but_the_request_id(response: Response) -> list[tuple[str, str]]:
    return sorted((name, value) for name, value in response.headers.multi_items() if name != "x-request-id")


async def head_and_get(client: AsyncClient, path: str, **kwargs) -> tuple[Response, Response]:
    return await client.head(path, **kwargs), await client.get(path, **kwargs)


async def test_head_of_a_product_is_its_get_without_the_body(client, admin_headers):
    product = await create_product(client, admin_headers)
    head, get = await head_and_get(client, f"{PRODUCTS}/{product['id']}", headers=admin_headers)

    assert (head.status_code, get.status_code) == (200, 200)
    assert head.content == b""
    assert get.json() == product
    assert headers_but_the_request_id(head) == headers_but_the_request_id(get)
    assert int(head.headers["content-length"]) == len(get.content)


async def test_head_of_a_missing_product_is_404_without_a_body(client, admin_headers):
    head, get = await head_and_get(client, f"{PRODUCTS}/999999", headers=admin_headers)

    assert (head.status_code, get.status_code) == (404, 404)
    assert head.content == b""
    # The same problem, request id aside (as long in both).
    assert headers_but_the_request_id(head) == headers_but_the_request_id(get)


async def test_head_where_get_is_not_allowed_is_405_like_get(client):
    head, get = await head_and_get(client, "/api/v1/auth/login")

    assert (head.status_code, get.status_code) == (405, 405)
    assert head.content == b""
    assert head.headers["allow"] == get.headers["allow"]


@pytest.mark.parametrize("path", ["/health", "/ready", "/docs", "/redoc", "/openapi.json"])
async def test_head_of_the_infrastructure_endpoints_and_docs(client, path):
    head, get = await head_and_get(client, path)

    assert (head.status_code, get.status_code) == (200, 200)
    assert head.content == b""
    assert headers_but_the_request_id(head) == headers_but_the_request_id(get)


async def test_head_of_the_metrics_is_their_get_without_the_body(client):
    # Every request changes the counts, so only the shape of the two answers can match.
    head, get = await head_and_get(client, "/metrics")

    assert (head.status_code, get.status_code) == (200, 200)
    assert head.content == b""
    assert head.headers["content-type"] == get.headers["content-type"]
    assert int(head.headers["content-length"]) > 0


async def test_head_is_counted_as_head_by_route_template(client, admin_headers):
    product = await create_product(client, admin_headers)
    labels = {"method": "HEAD", "handler": f"{PRODUCTS}/{{id}}", "status": "200"}
    before = (await client.get("/metrics")).text
    await client.head(f"{PRODUCTS}/{product['id']}", headers=admin_headers)
    after = (await client.get("/metrics")).text

    assert (
        sample_value(after, "http_requests_total", **labels) - sample_value(before, "http_requests_total", **labels)
        == 1
    )


async def test_openapi_lists_no_head_operations(client):
    paths = (await client.get("/openapi.json")).json()["paths"]

    assert paths
    assert [path for path, operations in paths.items() if "head" in operations] == []
