"""Request hardening: body size limit, clients that leave mid-body, security headers, docs CSP, CORS, request ids
and 500s that leak nothing.
"""

import logging
import re
from html.parser import HTMLParser

import pytest
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import text

from api.middleware import API_CSP
from auth.roles import Role
from tests.conftest import sqlite_only
from tests.helpers import assert_problem, row_counts, signed_in

LIMIT = 1024
CATEGORIES = "/api/v1/categories"
LOGIN = "/api/v1/auth/login"
REQUEST_ID = re.compile(r"[A-Za-z0-9._-]{1,128}")
ALLOWED_ORIGIN = "https://shop.example"
SECRET = "test-secret-key-that-is-long-enough-for-hs256"


# These layers sit in front of the database and behave the same on both: one backend is enough.
pytestmark = sqlite_only


def assert_security_headers(response, csp: str = API_CSP) -> None:
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.headers["X-Frame-Options"] == "DENY"
    assert response.headers["Content-Security-Policy"] == csp
    assert "frame-ancestors 'none'" in csp


async def category_count(client) -> int:
    return (await row_counts(client, "categories"))["categories"]


def padded_category(size: int) -> bytes:
    """A valid category body of exactly `size` bytes."""
    body = b'{"name": "Padded"}'
    return body[:-1] + b" " * (size - len(body)) + b"}"


# Login reads its body itself; categories leave it to FastAPI.
@pytest.mark.parametrize("path", [CATEGORIES, LOGIN], ids=["categories", "login"])
@pytest.mark.parametrize("streamed", [False, True], ids=["content-length", "streamed"])
async def test_body_over_the_limit_is_413(app_client, streamed, path):
    async with app_client(max_body_bytes=LIMIT) as client:
        admin, _ = await signed_in(client, Role.ADMIN)
        body = padded_category(LIMIT + 1)

        async def chunks():
            for start in range(0, len(body), 100):
                yield body[start : start + 100]

        headers = {**admin, "Content-Type": "application/json"}
        response = await client.post(path, content=chunks() if streamed else body, headers=headers)
        assert ("content-length" in response.request.headers) is not streamed
        assert_problem(response, 413, "payload_too_large")
        assert_security_headers(response)
        assert await category_count(client) == 0


async def test_body_of_exactly_the_limit_is_read(app_client):
    async with app_client(max_body_bytes=LIMIT) as client:
        admin, _ = await signed_in(client, Role.ADMIN)
        body = padded_category(LIMIT)
        response = await client.post(CATEGORIES, content=body, headers={**admin, "Content-Type": "application/json"})
        assert response.status_code == 201
        assert await category_count(client) == 1


# "²" passes str.isdigit() but not int().
@pytest.mark.parametrize("declared", [b"-1", b"1e3", b"0x10", "\u00b2".encode("latin-1")], ids=repr)
async def test_malformed_content_length_is_refused(client, declared):
    headers = {"Content-Type": "application/json", "Content-Length": declared}
    assert_problem(await client.post(LOGIN, content=b"{}", headers=headers), 413)


async def drive(app, path: str, headers: dict[str, str], messages: list[dict], http_version: str = "1.1") -> list[dict]:
    """Drive the app as a server does for a POST whose body arrives as `messages`; what the app sent."""
    body = iter(messages)

    async def receive():
        # Once the client has gone, every receive() says so, as servers do.
        return next(body, {"type": "http.disconnect"})

    sent: list[dict] = []

    async def send(message):
        sent.append(message)

    headers = {**headers, "Host": "shop.test", "Content-Type": "application/json"}
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": http_version,
        "method": "POST",
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "root_path": "",
        "headers": [(name.lower().encode(), value.encode()) for name, value in headers.items()],
        "client": ("127.0.0.1", 50000),
        "server": ("shop.test", 80),
    }
    await app(scope, receive, send)
    return sent


async def leave_mid_body(app, path: str, headers: dict[str, str]) -> list[dict]:
    """A client that sends 5 of 1000 declared bytes and goes."""
    return await drive(
        app,
        path,
        {**headers, "Content-Length": "1000"},
        [{"type": "http.request", "body": b'{"use', "more_body": True}],
    )


async def test_http2_body_without_a_length_is_counted_too(app_client):
    # HTTP/2 frames a body without Content-Length or Transfer-Encoding; only HTTP/1 requests without them have none.
    async with app_client(max_body_bytes=LIMIT) as client:
        admin, _ = await signed_in(client, Role.ADMIN)
        body = padded_category(LIMIT + 1)
        messages = [
            {"type": "http.request", "body": body[:LIMIT], "more_body": True},
            {"type": "http.request", "body": body[LIMIT:], "more_body": False},
        ]
        sent = await drive(client.app, CATEGORIES, admin, messages, http_version="2")

        assert sent[0]["status"] == 413
        assert await category_count(client) == 0


def posts_by_status(metrics: str, path: str) -> dict[str, float]:
    return {
        sample.labels["status"]: sample.value
        for family in text_string_to_metric_families(metrics)
        for sample in family.samples
        if sample.name == "http_requests_total"
        and sample.labels["handler"] == path
        and sample.labels["method"] == "POST"
    }


# Login reads its body itself; FastAPI parses the others' (and would answer a 400 on its own).
@pytest.mark.parametrize("path", [LOGIN, CATEGORIES, "/api/v1/products", "/api/v1/orders"])
async def test_client_leaving_mid_body_gets_nothing_and_is_counted_apart(client, admin_headers, caplog, path):
    before = posts_by_status((await client.get("/metrics")).text, path)
    # create_app pointed the root logger at its own handler; listen beside it.
    logging.getLogger().addHandler(caplog.handler)
    try:
        with caplog.at_level(logging.DEBUG):
            sent = await leave_mid_body(client.app, path, admin_headers)
    finally:
        logging.getLogger().removeHandler(caplog.handler)
    after = posts_by_status((await client.get("/metrics")).text, path)

    assert sent == []
    assert {
        status: count - before.get(status, 0) for status, count in after.items() if count != before.get(status)
    } == {"499": 1}
    assert [record.getMessage() for record in caplog.records if record.levelno >= logging.WARNING] == []
    assert not any(record.exc_info for record in caplog.records)
    access = [record for record in caplog.records if record.name == "shop.access"]
    assert [(record.levelname, record.status) for record in access] == [("INFO", 499)]


def add_failing_routes(app) -> None:
    async def raises() -> None:
        raise RuntimeError("SELECT hashed_password FROM users WHERE secret = :secret", SECRET)

    async def bad_sql() -> None:
        async with app.state.database.sessionmaker() as session:
            await session.execute(
                text("SELECT hashed_password FROM no_such_table WHERE secret = :secret"), {"secret": SECRET}
            )

    app.add_api_route("/api/v1/test-raises", raises)
    app.add_api_route("/api/v1/test-bad-sql", bad_sql)


RESPONSES = [
    ("GET", "/health", None, 200),
    ("GET", "/api/v1/users/me", None, 401),
    ("GET", "/api/v1/no-such-thing", None, 404),
    ("DELETE", "/health", None, 405),
    ("POST", LOGIN, {}, 422),
    ("GET", "/api/v1/test-raises", None, 500),
]


@pytest.mark.parametrize(("method", "path", "body", "status"), RESPONSES, ids=[f"{m} {p}" for m, p, _, _ in RESPONSES])
async def test_every_response_carries_the_security_headers(client, method, path, body, status):
    add_failing_routes(client.app)
    response = await client.request(method, path, json=body)
    assert response.status_code == status
    assert_security_headers(response)
    assert REQUEST_ID.fullmatch(response.headers["X-Request-ID"])
    if status >= 400:
        assert_problem(response, status)


@pytest.mark.parametrize("path", ["/api/v1/test-raises", "/api/v1/test-bad-sql"])
async def test_500_leaks_nothing(client, path):
    add_failing_routes(client.app)
    response = await client.get(path)
    body = assert_problem(response, 500)
    assert body == {
        "type": "about:blank",
        "title": "Internal Server Error",
        "status": 500,
        "detail": "An unexpected error occurred",
        "code": "internal_error",
        "request_id": response.headers["X-Request-ID"],
    }
    leaks = ("Traceback", "SELECT", "hashed_password", "no_such_table", SECRET, "RuntimeError", 'File "')
    assert [leak for leak in leaks if leak in response.text] == []


class AssetCollector(HTMLParser):
    """Every URL a page loads, and whether it has inline scripts or styles."""

    def __init__(self) -> None:
        super().__init__()
        self.urls: list[str] = []
        self.inline: set[str] = set()

    def handle_starttag(self, tag, attrs):
        named = dict(attrs)
        self.urls += [named[key] for key in ("src", "href") if named.get(key)]
        if tag == "script" and not named.get("src"):
            self.inline.add("script")
        if tag == "style":
            self.inline.add("style")


@pytest.mark.parametrize("path", ["/docs", "/redoc"])
async def test_docs_pages_get_a_csp_that_lets_them_work(client, path):
    response = await client.get(path)
    assert response.status_code == 200
    csp = response.headers["Content-Security-Policy"]
    assert csp != API_CSP
    assert_security_headers(response, csp=csp)
    directives = {name: rest.split() for name, _, rest in (part.strip().partition(" ") for part in csp.split(";"))}
    page = AssetCollector()
    page.feed(response.text)
    # Every asset is the service's own ('self'), and each kind of inline block the page uses is allowed.
    assert page.urls
    for url in page.urls:
        assert url.startswith("/"), url
        assert not url.startswith("//"), url
        asset = await client.get(url)
        assert asset.status_code == 200, url
        assert asset.headers["X-Frame-Options"] == "DENY"
    for kind in page.inline:
        assert "'unsafe-inline'" in directives[f"{kind}-src"], kind
    assert "'self'" in directives["script-src"]


async def test_the_json_the_docs_load_keeps_the_strict_policy(client):
    assert (await client.get("/openapi.json")).headers["Content-Security-Policy"] == API_CSP


async def test_cors_for_a_listed_origin(app_client):
    async with app_client(cors_origins=[ALLOWED_ORIGIN]) as client:
        simple = await client.get("/health", headers={"Origin": ALLOWED_ORIGIN})
        assert simple.headers["Access-Control-Allow-Origin"] == ALLOWED_ORIGIN
        assert "x-request-id" in simple.headers["Access-Control-Expose-Headers"].lower()
        # No cookies are used: credentials are never allowed cross-origin.
        assert "Access-Control-Allow-Credentials" not in simple.headers

        preflight = await client.options(
            "/api/v1/orders",
            headers={
                "Origin": ALLOWED_ORIGIN,
                "Access-Control-Request-Method": "POST",
                "Access-Control-Request-Headers": "Authorization, Content-Type, Idempotency-Key",
            },
        )
        assert preflight.status_code == 200
        assert preflight.headers["Access-Control-Allow-Origin"] == ALLOWED_ORIGIN
        methods = {item.strip() for item in preflight.headers["Access-Control-Allow-Methods"].split(",")}
        assert {"GET", "POST", "PUT", "PATCH", "DELETE"} <= methods
        allowed = {item.strip().lower() for item in preflight.headers["Access-Control-Allow-Headers"].split(",")}
        assert {"authorization", "content-type", "idempotency-key"} <= allowed
        assert_security_headers(preflight)


@pytest.mark.parametrize("configured", [[ALLOWED_ORIGIN], []], ids=["other-origin-listed", "none-listed"])
async def test_no_cors_headers_for_an_unlisted_origin(app_client, configured):
    async with app_client(cors_origins=configured) as client:
        origin = "https://evil.example"
        simple = await client.get("/health", headers={"Origin": origin})
        preflight = await client.options(
            "/api/v1/orders",
            headers={
                "Origin": origin,
                "Access-Control-Request-Method": "POST",
                "Access-Control-Request-Headers": "Authorization",
            },
        )
        assert simple.status_code == 200
        # Refused: 400 when CORS is configured, 405 when OPTIONS reaches the routes; a problem either way.
        assert_problem(preflight, 400 if configured else 405)
        for response in (simple, preflight):
            assert not [name for name in response.headers if name.lower().startswith("access-control-")]


@pytest.mark.parametrize("supplied", ["a", "A" * 128, "abc.DEF_123-xyz"], ids=["short", "longest", "punctuation"])
async def test_valid_request_id_is_echoed_in_header_and_problem(client, supplied):
    health = await client.get("/health", headers={"X-Request-ID": supplied})
    problem = await client.get("/api/v1/no-such-thing", headers={"X-Request-ID": supplied})

    assert [health.headers["X-Request-ID"], problem.headers["X-Request-ID"]] == [supplied, supplied]
    assert problem.json()["request_id"] == supplied


@pytest.mark.parametrize(
    "supplied",
    [b"", b"A" * 129, b"has space", b"semi;colon", b'quote"d', "\u00fcn\u00efcode".encode("latin-1")],
    ids=["empty", "too-long", "space", "semicolon", "quote", "non-ascii"],
)
async def test_invalid_request_id_is_replaced(client, supplied):
    response = await client.get("/api/v1/no-such-thing", headers={"X-Request-ID": supplied})
    replaced = response.headers["X-Request-ID"]
    assert replaced.encode("latin-1") != supplied
    assert REQUEST_ID.fullmatch(replaced)
    assert response.json()["request_id"] == replaced
    other = await client.get("/api/v1/no-such-thing", headers={"X-Request-ID": supplied})
    assert other.headers["X-Request-ID"] != replaced


async def test_made_up_methods_do_not_grow_the_metrics(client):
    response = await client.request("MADEUP1", "/api/v1/products")
    assert_problem(response, 405)
    metrics = (await client.get("/metrics")).text
    methods = {
        sample.labels.get("method")
        for family in text_string_to_metric_families(metrics)
        if family.name == "http_requests"
        for sample in family.samples
    }
    assert "MADEUP1" not in methods
    assert "other" in methods


async def test_trailing_slash_is_served_not_redirected(client, admin_headers):
    created = await client.post("/api/v1/categories/", json={"name": "Slashed"}, headers=admin_headers)
    assert created.status_code == 201
    listed = await client.get("/api/v1/categories/", headers=admin_headers)
    assert listed.status_code == 200
    assert [item["name"] for item in listed.json()["items"]] == ["Slashed"]
    assert (await client.get(f"/api/v1/categories/{created.json()['id']}/", headers=admin_headers)).status_code == 200
