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
