"""/docs and /redoc work on a closed network: every asset comes from the service, under a CSP that lets them run."""

import re
from pathlib import Path
from typing import Annotated
from urllib.parse import urlsplit

import fastapi_offline
import pytest
from fastapi import FastAPI, Header

from api.conditional import IF_NONE_MATCH, IF_NONE_MATCH_DESCRIPTION
from tests.conftest import BASE_URL, sqlite_only

DOCS_PAGES = ["/docs", "/redoc", "/docs/oauth2-redirect"]
# Where a page names another resource: tag attributes, and the `url: '...'` of Swagger UI's inline bootstrap.
REFERENCE = re.compile(r"""(?:\b(?:src|href|spec-url)=|\burl:\s*)["']([^"']+)["']""")
ABSOLUTE_URL = re.compile(r"""(?:https?:)?//[^\s"'<>)]+""")
ASSET_TYPES = {".js": "javascript", ".css": "text/css", ".png": "image/png", ".json": "application/json"}
SERVICE_HOST = urlsplit(BASE_URL).netloc
# The host of every http(s) URL in a text, where a host is written out (a template may build the rest).
URL_HOST = re.compile(r"https?://([\w.-]+)")
# Hosts that the docs' bundles name although the page never reaches them. Any other host fails the test below:
# argue for it here, or keep it out of what the docs serve.
HARMLESS_HOSTS = {
    # Identifiers that are compared, never fetched: XML namespaces (SVG, XHTML, MathML, XLink); JSON Schema and
    # OpenAPI dialect, meta-schema and vocabulary ids, whose schemas the bundles carry; the $id of ajv's $data
    # meta-schema, built into ajv.
    "www.w3.org",
    "json-schema.org",
    "spec.openapis.org",
    "raw.githubusercontent.com",
    # Text for people, never loaded: RFC references in the comments of Swagger UI's URI and cookie grammars, and
    # the links in library error and deprecation messages (React, Redux, MobX, polished, marked, highlight.js,
    # core-js's licence notice) and in a CSS comment.
    "datatracker.ietf.org",
    "www.rfc-editor.org",
    "github.com",
    "reactjs.org",
    "redux.js.org",
    "fb.me",
    "git.io",
    "marked.js.org",
    "stackoverflow.com",
    # Values computed with, never fetched: sample values for `format: uri` and `iri` (RFC 2606's example.com and
    # its Korean form); dummy bases that Swagger UI resolves or validates relative URLs against (swagger.io,
    # vladimirgorej.com, and "https://base" plus a random number); the prefix ReDoc compares $refs with to spot
    # Redocly's registry ("https://api." plus a domain).
    "example.com",
    "실례.com",
    "swagger.io",
    "vladimirgorej.com",
    "base",
    "api.",
    # Links Swagger UI's Markdown autolinker would make for hashtags and mentions (it links only URLs and e-mail
    # addresses), and for an SPDX licence identifier (the document declares none).
    "twitter.com",
    "www.facebook.com",
    "instagram.com",
    "www.tiktok.com",
    "soundcloud.com",
    "spdx.org",
    # ReDoc: a default in its configuration schema, a comment of the lint file it can write, and the link of its
    # "API docs by Redocly" line, which loads nothing unless followed (its logo is served without the outside
    # address: see test_redoc_asks_no_outside_host_for_its_logo).
    "redocly.com",
    # Swagger UI's default validator, whose badge would load an image from it: main.py sets validatorUrl to null
    # (see test_swagger_ui_validator_is_off).
    "validator.swagger.io",
}


# The docs do not depend on the database; one backend is enough.
pytestmark = sqlite_only


def policy(response) -> dict[str, set[str]]:
    """The Content-Security-Policy header as {directive: sources}."""
    directives = {}
    for part in response.headers["content-security-policy"].split(";"):
        name, *sources = part.split()
        directives[name] = set(sources)
    return directives


@pytest.mark.parametrize("page", DOCS_PAGES)
async def test_docs_pages_name_no_other_host(client, page):
    response = await client.get(page)

    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    foreign = [url for url in ABSOLUTE_URL.findall(response.text) if urlsplit(url).netloc != SERVICE_HOST]
    assert foreign == []


@pytest.mark.parametrize("page", ["/docs", "/redoc"])
async def test_every_asset_a_docs_page_uses_is_served_here(client, page):
    html = (await client.get(page)).text
    references = REFERENCE.findall(html)

    # Swagger UI: its bundle, stylesheet, favicon and the spec; ReDoc: its standalone bundle, favicon and the spec.
    assert any(reference.endswith(".js") for reference in references)
    assert "/openapi.json" in references
    assert [reference for reference in references if not reference.startswith("/")] == []
    served = {}
    for reference in references:
        asset = await client.get(reference)
        kind = next((kind for suffix, kind in ASSET_TYPES.items() if reference.endswith(suffix)), None)
        served[reference] = (asset.status_code, kind is not None and kind in asset.headers["content-type"])
    assert served == dict.fromkeys(references, (200, True))


@pytest.mark.parametrize("page", ["/docs", "/redoc"])
async def test_the_assets_of_a_docs_page_name_no_other_host_but_harmless_ones(client, page):
    references = REFERENCE.findall((await client.get(page)).text)

    unexplained = {}
    for reference in references:
        # Read even an image as text: whatever a URL in it may be, it is ASCII.
        text = (await client.get(reference)).content.decode("utf-8", errors="replace")
        unexplained[reference] = set(URL_HOST.findall(text)) - {SERVICE_HOST} - HARMLESS_HOSTS

    assert unexplained == {reference: set() for reference in references}


async def test_every_harmless_host_is_still_named(client):
    # So that the list above keeps no host that a new version of the bundles no longer names.
    named = set()
    for page in ("/docs", "/redoc"):
        for reference in REFERENCE.findall((await client.get(page)).text):
            named |= set(URL_HOST.findall((await client.get(reference)).content.decode("utf-8", errors="replace")))

    assert HARMLESS_HOSTS - named == set()


async def test_redoc_asks_no_outside_host_for_its_logo(client):
    # fastapi_offline's copy of the bundle shows "API docs by Redocly" with a logo from cdn.redoc.ly.
    packaged = (Path(fastapi_offline.__file__).parent / "static" / "redoc.standalone.js").read_text(encoding="utf-8")
    bundle = next(ref for ref in REFERENCE.findall((await client.get("/redoc")).text) if ref.endswith(".js"))

    served = (await client.get(bundle)).text

    # If a new fastapi_offline drops the logo, the app's patch has nothing left to do and can go.
    assert "cdn.redoc.ly" in packaged
    assert "cdn.redoc.ly" not in served
    assert len(served) < len(packaged)


async def test_swagger_ui_validator_is_off(client):
    # Left on, Swagger UI's validator badge shows an image from validator.swagger.io, given the spec's address.
    assert '"validatorUrl": null' in (await client.get("/docs")).text


async def test_openapi_lists_the_infrastructure_endpoints(client):
    paths = (await client.get("/openapi.json")).json()["paths"]

    assert {path: "get" in paths[path] for path in ("/health", "/ready", "/metrics")} == dict.fromkeys(
        ("/health", "/ready", "/metrics"), True
    )


@pytest.mark.parametrize("path", ["/docs", "/redoc", "/static-offline-docs/swagger-ui-bundle.js"])
async def test_docs_csp_lets_their_own_scripts_run_and_nothing_foreign(client, path):
    directives = policy(await client.get(path))

    assert {"'self'", "'unsafe-inline'"} <= directives["script-src"]
    assert {"'self'", "'unsafe-inline'"} <= directives["style-src"]
    assert directives["default-src"] == {"'self'"}
    assert directives["frame-ancestors"] == {"'none'"}
    # Only this origin, inline code, data: URIs and ReDoc's blob: workers: no other host can be reached.
    assert set().union(*directives.values()) <= {"'self'", "'unsafe-inline'", "'none'", "data:", "blob:"}


@pytest.mark.parametrize("path", ["/api/v1/products", "/health", "/openapi.json", "/no/such/page"])
async def test_api_responses_allow_no_content_at_all(client, path):
    directives = policy(await client.get(path))

    assert directives["default-src"] == {"'none'"}
    assert directives["frame-ancestors"] == {"'none'"}


# Generated clients name their methods after these: they are part of what the service offers, so they are
# written out here, and a renamed route function shows up as a failure rather than as a silent change.
OPERATION_IDS = {
    ("post", "/api/v1/auth/register"): "register",
    ("post", "/api/v1/auth/login"): "login",
    ("post", "/api/v1/auth/refresh"): "refresh",
    ("post", "/api/v1/auth/logout"): "logout",
    ("post", "/api/v1/auth/password-reset"): "requestPasswordReset",
    ("post", "/api/v1/auth/password-reset/confirm"): "confirmPasswordReset",
    ("post", "/api/v1/auth/verify-email"): "verifyEmail",
    ("get", "/api/v1/users/me"): "readMe",
    ("patch", "/api/v1/users/me"): "updateMe",
    ("delete", "/api/v1/users/me"): "eraseMyAccount",
    ("post", "/api/v1/users/me/password"): "changeMyPassword",
    ("delete", "/api/v1/users/me/sessions"): "signOutEverywhere",
    ("post", "/api/v1/users/me/verification-email"): "sendVerificationEmail",
    ("get", "/api/v1/users"): "listUsers",
    ("post", "/api/v1/users"): "createUser",
    ("get", "/api/v1/users/{id}"): "readUser",
    ("patch", "/api/v1/users/{id}"): "updateUser",
    ("delete", "/api/v1/users/{id}/sessions"): "signUserOutEverywhere",
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
    ("post", "/api/v1/orders/{id}/cancel"): "cancelOrder",
    ("get", "/api/v1/events"): "listEvents",
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


async def test_every_api_operation_documents_503_with_retry_after(client):
    """Each of them needs the database (an account, a token family, a row): a client must plan for its loss."""
    paths = (await client.get("/openapi.json")).json()["paths"]
    undocumented = [
        (method, path)
        for path, item in paths.items()
        if path.startswith("/api/v1/")
        for method, operation in item.items()
        if "Retry-After" not in operation["responses"].get("503", {}).get("headers", {})
    ]

    assert undocumented == []


async def test_every_protected_operation_documents_both_ways_to_send_the_token(client):
    """The catalogue reads declare the schemes themselves (dependencies.READING_SECURITY), the rest by dependency."""
    document = (await client.get("/openapi.json")).json()
    protected = {
        (method, path): operation
        for path, operations in document["paths"].items()
        for method, operation in operations.items()
        # Login and refresh answer 401 to bad credentials, and take no access token.
        if "401" in operation["responses"] and path not in ("/api/v1/auth/login", "/api/v1/auth/refresh")
    }

    assert ("get", "/api/v1/products/{id}") in protected
    assert {key: operation.get("security") for key, operation in protected.items()} == {
        key: [{"OAuth2Password": []}, {"BearerToken": []}] for key in protected
    }
    assert set(document["components"]["securitySchemes"]) == {"OAuth2Password", "BearerToken"}
    # The Authorize button of /docs logs in with the password form.
    assert document["components"]["securitySchemes"]["OAuth2Password"]["flows"]["password"]["tokenUrl"] == (
        "/api/v1/auth/login"
    )


async def test_conditional_reads_document_if_none_match_as_a_declared_header_would(client):
    """The reads parse If-None-Match themselves (api.conditional.if_none_match) and declare it by hand."""
    probe = FastAPI()

    @probe.get("/probe")
    async def read(
        _tags: Annotated[str | None, Header(alias=IF_NONE_MATCH, description=IF_NONE_MATCH_DESCRIPTION)] = None,
    ) -> None:
        return None

    declared = probe.openapi()["paths"]["/probe"]["get"]["parameters"]
    paths = (await client.get("/openapi.json")).json()["paths"]
    reads = ["/api/v1/products/{id}", "/api/v1/categories/{id}", "/api/v1/orders/{id}", "/api/v1/users/{id}"]
    reads.append("/api/v1/users/me")

    assert {path: paths[path]["get"]["parameters"][-1:] for path in reads} == dict.fromkeys(reads, declared)
    assert [parameter["name"] for parameter in paths["/api/v1/products/{id}"]["get"]["parameters"][:-1]] == ["id"]
