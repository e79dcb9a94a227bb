"""/docs and /redoc work on a closed network: every asset comes from the service, under a CSP that lets them run."""

import re
from urllib.parse import urlsplit

import pytest

from tests.conftest import sqlite_only

DOCS_PAGES = ["/docs", "/redoc", "/docs/oauth2-redirect"]
# Where a page names another resource: tag attributes, and the `url: '...'` of Swagger UI's inline bootstrap.
REFERENCE = re.compile(r"""(?:\b(?:src|href|spec-url)=|\burl:\s*)["']([^"']+)["']""")
ABSOLUTE_URL = re.compile(r"""(?:https?:)?//[^\s"'<>)]+""")
ASSET_TYPES = {".js": "javascript", ".css": "text/css", ".png": "image/png", ".json": "application/json"}


# The docs do not depend on the database; one backend is enough.
pytestmark = sqlite_only


def policy(response) -> dict[str, set[str]]:
    """The Content-Security-Policy header as {directive: sources}."""
    directives = {}
    for part in response.headers["content-security-policy"].split(";"):
        name, *sources = part.split()
        directives[name] = set(sources)
    return directives


async def test_docs_pages_name_no_other_host(client):
    for page in DOCS_PAGES:
        response = await client.get(page)

        assert response.status_code == 200, page
        assert response.headers["content-type"].startswith("text/html"), page
        foreign = [url for url in ABSOLUTE_URL.findall(response.text) if urlsplit(url).netloc != "shop.test"]
        assert foreign == [], page


@pytest.mark.parametrize("page", ["/docs", "/redoc"])
async def test_every_asset_a_docs_page_uses_is_served_here(client, page):
    html = (await client.get(page)).text
    references = REFERENCE.findall(html)

    # Swagger UI: its bundle, stylesheet, favicon and the spec; ReDoc: its standalone bundle, favicon and the spec.
    assert any(reference.endswith(".js") for reference in references)
    assert "/openapi.json" in references
    for reference in references:
        assert reference.startswith("/"), reference
        asset = await client.get(reference)
        assert asset.status_code == 200, reference
        expected_type = next((kind for suffix, kind in ASSET_TYPES.items() if reference.endswith(suffix)), None)
        assert expected_type is not None, reference
        assert expected_type in asset.headers["content-type"], reference


async def test_openapi_lists_the_infrastructure_endpoints(client):
    paths = (await client.get("/openapi.json")).json()["paths"]

    for path in ("/health", "/ready", "/metrics"):
        assert "get" in paths[path], path


async def test_docs_csp_lets_their_own_scripts_run_and_nothing_foreign(client):
    for path in ("/docs", "/redoc", "/static-offline-docs/swagger-ui-bundle.js"):
        directives = policy(await client.get(path))

        assert {"'self'", "'unsafe-inline'"} <= directives["script-src"], path
        assert {"'self'", "'unsafe-inline'"} <= directives["style-src"], path
        assert directives["default-src"] == {"'self'"}, path
        assert directives["frame-ancestors"] == {"'none'"}, path
        # Only this origin, inline code, data: URIs and ReDoc's blob: workers: no other host can be reached.
        assert set().union(*directives.values()) <= {"'self'", "'unsafe-inline'", "'none'", "data:", "blob:"}, path


async def test_api_responses_allow_no_content_at_all(client):
    for path in ("/api/v1/products", "/health", "/openapi.json", "/no/such/page"):
        directives = policy(await client.get(path))

        assert directives["default-src"] == {"'none'"}, path
        assert directives["frame-ancestors"] == {"'none'"}, path


# Generated clients name their methods after these: they are part of what the service offers, so they are
# written out here, and a renamed route function shows up as a failure rather than as a silent change.
OPERATION_IDS = {
    ("post", "/api/v1/auth/register"): "register",
    ("post", "/api/v1/auth/login"): "login",
    ("post", "/api/v1/auth/refresh"): "refresh",
    ("post", "/api/v1/auth/logout"): "logout",
    ("get", "/api/v1/users/me"): "readMe",
    ("get", "/api/v1/users"): "listUsers",
    ("get", "/api/v1/users/{id}"): "readUser",
    ("patch", "/api/v1/users/{id}"): "updateUser",
    ("get", "/api/v1/categories"): "listCategories",
    ("post", "/api/v1/categories"): "createCategory",
    ("get", "/api/v1/categories/{id}"): "readCategory",
    ("put", "/api/v1/categories/{id}"): "replaceCategory",
    ("delete", "/api/v1/categories/{id}"): "deleteCategory",
    ("get", "/api/v1/products"): "listProducts",
    ("post", "/api/v1/products"): "createProduct",
    ("get", "/api/v1/products/{id}"): "readProduct",
    ("put", "/api/v1/products/{id}"): "replaceProduct",
    ("delete", "/api/v1/products/{id}"): "deleteProduct",
    ("post", "/api/v1/orders"): "placeOrder",
    ("get", "/api/v1/orders"): "listOrders",
    ("get", "/api/v1/orders/{id}"): "readOrder",
    ("patch", "/api/v1/orders/{id}/status"): "changeOrderStatus",
    ("get", "/health"): "health",
    ("get", "/ready"): "ready",
    ("get", "/metrics"): "metrics",
}
CAMEL_CASE = re.compile(r"[a-z]+(?:[A-Z][a-z0-9]*)*")


async def test_every_operation_has_a_short_unique_camel_case_id(client):
    paths = (await client.get("/openapi.json")).json()["paths"]
    ids = {
        (method, path): operation["operationId"] for path, item in paths.items() for method, operation in item.items()
    }

    assert [value for value in ids.values() if "_api_v1_" in value or not CAMEL_CASE.fullmatch(value)] == []
    assert len(set(ids.values())) == len(ids)
    assert ids == OPERATION_IDS
