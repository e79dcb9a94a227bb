"""The yardstick of `make bench`: bare Starlette + asyncpg + PyJWT (+ Redis for orders) and our response bodies.

The reads (one product, a cursor page) are the issue's bare app: the token verified by PyJWT, then one SELECT
per request, nothing else: no rate limit, no revocation check, no user row, no validation layer, ORM,
middleware, metrics or problem details. An order and a login do what ours do in the database (the same SQL,
the user's revocation key and row included), without the framework. Run by bench/run.py as
`uvicorn bench.baseline:app`, configured by environment: BASELINE_DATABASE_URL (a plain postgresql:// DSN),
REDIS_URL, SECRET_KEY, ACCESS_TOKEN_TTL_SECONDS.
"""

import base64
import hashlib
import hmac
import json
import os
import secrets
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import anyio
import asyncpg
import bcrypt
import jwt
from redis.asyncio import Redis
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

SECRET = os.environ["SECRET_KEY"]
ACCESS_TTL = int(os.environ.get("ACCESS_TOKEN_TTL_SECONDS", "900"))
REFRESH_TTL = 1_209_600
REVOKED_PREFIX = "shop:revoked-access:"  # infrastructure/revocations.py
REQUIRED_CLAIMS = ["sub", "role", "type", "jti", "iat", "exp"]

# Spelled out in full, as our repositories' statements reach the driver.
USER_BY_ID = (
    "SELECT users.id, users.username, users.email, users.hashed_password, users.role, users.is_active, "
    "users.created_at, users.updated_at FROM users WHERE users.id = $1"
)
USER_BY_LOGIN = (
    "SELECT users.id, users.username, users.email, users.hashed_password, users.role, users.is_active, "
    "users.created_at, users.updated_at FROM users WHERE lower(users.username) = $1 OR lower(users.email) = $2 "
    "LIMIT $3"
)
PRODUCT_BY_ID = (
    "SELECT products.id, products.name, products.description, products.price, products.stock, "
    "products.category_id, products.created_at, products.updated_at, products.deleted_at FROM products "
    "WHERE products.id = $1 AND products.deleted_at IS NULL"
)
# A cursor page's one statement: its rows and one more, which tells whether more follow.
FIRST_CURSOR_PAGE = (
    "SELECT products.id, products.name, products.description, products.price, products.stock, "
    "products.category_id, products.created_at, products.updated_at, products.deleted_at FROM products "
    "WHERE products.deleted_at IS NULL ORDER BY products.id ASC LIMIT $1"
)
LIVE_PRODUCT_IDS = (
    "SELECT products.id FROM products WHERE products.id = ANY($1::integer[]) AND products.deleted_at IS NULL"
)
RESERVE_STOCK = (
    "UPDATE products SET stock=(products.stock - $1), updated_at=$2 WHERE products.id = $3 "
    "AND products.deleted_at IS NULL AND products.stock >= $4 RETURNING products.price"
)
INSERT_ORDER = (
    "INSERT INTO orders (user_id, status, total, created_at, updated_at) VALUES ($1, $2, $3, $4, $5) "
    "RETURNING orders.id"
)
INSERT_ITEM = (
    "INSERT INTO order_items (order_id, product_id, quantity, price) VALUES ($1, $2, $3, $4) RETURNING order_items.id"
)
INSERT_FAMILY_ROW = "INSERT INTO refresh_token_families (id, user_id, created_at, revoked_at) VALUES ($1, $2, $3, $4)"
INSERT_REFRESH_ROW = (
    "INSERT INTO refresh_tokens (user_id, family_id, token_hash, created_at, expires_at, used_at) "
    "VALUES ($1, $2, $3, $4, $5, $6) RETURNING refresh_tokens.id"
)


def _problem(status: int, detail: str) -> JSONResponse:
    return JSONResponse({"status": status, "detail": detail}, status_code=status)


def _timestamp(value: datetime) -> str:
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z")


def _money(value: Decimal) -> str:
    return f"{value:.2f}"


# The same cursor as api/cursors.py issues: the last item's key, HMAC-SHA256 bound to the list and its query.
CURSOR_KEY = hmac.new(SECRET.encode(), b"shop list cursor v1", hashlib.sha256).digest()


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def _next_cursor(request: Request, row: asyncpg.Record) -> str:
    filters = {"category_id": None, "q": None, "min_price": None, "max_price": None, "in_stock": None, "sort": "id"}
    document = json.dumps(
        {"list": request.url.path, "filters": {"filters": filters}}, sort_keys=True, separators=(",", ":")
    )
    scope = hashlib.sha256(document.encode()).digest()
    payload = _b64(json.dumps([["i", str(row["id"])]], separators=(",", ":")).encode())
    mac = hmac.new(CURSOR_KEY, scope + b"." + payload.encode(), hashlib.sha256).digest()
    return f"{payload}.{_b64(mac)}"


def _product(row: asyncpg.Record) -> dict[str, Any]:
    return {
        "id": row["id"],
        "name": row["name"],
        "description": row["description"],
        "price": _money(row["price"]),
        "stock": row["stock"],
        "category_id": row["category_id"],
        "created_at": _timestamp(row["created_at"]),
        "updated_at": _timestamp(row["updated_at"]),
    }


def _claims(request: Request) -> dict[str, Any] | JSONResponse:
    """The token check of the issue's bare app: PyJWT's decode and the token type; a 401 when it fails."""
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not token:
        return _problem(401, "Authentication required")
    try:
        claims = jwt.decode(token.strip(), SECRET, algorithms=["HS256"], options={"require": REQUIRED_CLAIMS})
    except jwt.PyJWTError:
        return _problem(401, "The access token is invalid or expired")
    if claims.get("type") != "access":
        return _problem(401, "The access token is invalid or expired")
    return claims


async def _current_user(request: Request, connection: asyncpg.Connection) -> asyncpg.Record | JSONResponse:
    claims = _claims(request)
    if isinstance(claims, JSONResponse):
        return claims
    if await request.app.state.redis.exists(REVOKED_PREFIX + claims["jti"]):
        return _problem(401, "The access token has been revoked")
    user = await connection.fetchrow(USER_BY_ID, int(claims["sub"]))
    if user is None:
        return _problem(401, "The access token is invalid or expired")
    if not user["is_active"]:
        return _problem(403, "This account is disabled")
    return user


def _verified(request: Request) -> Response | None:
    """None when the token passes the bare app's check, else its 401."""
    claims = _claims(request)
    return claims if isinstance(claims, JSONResponse) else None


async def read_product(request: Request) -> Response:
    refused = _verified(request)
    if refused is not None:
        return refused
    async with request.app.state.pool.acquire() as connection:
        row = await connection.fetchrow(PRODUCT_BY_ID, int(request.path_params["id"]))
    if row is None:
        return _problem(404, "Product not found")
    return JSONResponse(_product(row))


async def list_products(request: Request) -> Response:
    """The first cursor page (`?size=N&cursor=`) in id order: the only list the bench asks the baseline for."""
    size = int(request.query_params.get("size", "20"))
    if request.query_params.get("sort", "id") != "id" or request.query_params.get("cursor") != "":
        return _problem(422, "this baseline serves the first cursor page in id order only")
    refused = _verified(request)
    if refused is not None:
        return refused
    async with request.app.state.pool.acquire() as connection:
        rows = await connection.fetch(FIRST_CURSOR_PAGE, size + 1)
    items = rows[:size]
    next_cursor = _next_cursor(request, items[-1]) if len(rows) > size else None
    return JSONResponse(
        {
            "items": [_product(row) for row in items],
            "total": None,
            "page": None,
            "size": size,
            "pages": None,
            "next_cursor": next_cursor,
        }
    )


class _InsufficientStockError(Exception):
    """Rolls the order's transaction back."""


async def place_order(request: Request) -> Response:
    lines = [(int(item["product_id"]), int(item["quantity"])) for item in json.loads(await request.body())["items"]]
    async with request.app.state.pool.acquire() as connection:
        user = await _current_user(request, connection)
        if isinstance(user, Response):
            return user
        if user["role"] not in ("user", "admin"):
            return _problem(403, "This needs the user role or higher")
        now = datetime.now(UTC)
        async with connection.transaction():
            live = {row["id"] for row in await connection.fetch(LIVE_PRODUCT_IDS, [pid for pid, _ in lines])}
            if len(live) != len(lines):
                return _problem(400, "Unknown product")
            priced = []
            for product_id, quantity in sorted(lines):
                price = await connection.fetchval(RESERVE_STOCK, quantity, now, product_id, quantity)
                if price is None:
                    raise _InsufficientStockError
                priced.append((product_id, quantity, price))
            total = sum((price * quantity for _, quantity, price in priced), Decimal("0.00"))
            order_id = await connection.fetchval(INSERT_ORDER, user["id"], "pending", total, now, now)
            items = [
                {
                    "id": await connection.fetchval(INSERT_ITEM, order_id, product_id, quantity, price),
                    "product_id": product_id,
                    "quantity": quantity,
                    "price": _money(price),
                }
                for product_id, quantity, price in priced
            ]
    body = {
        "id": order_id,
        "user_id": user["id"],
        "status": "pending",
        "total": _money(total),
        "created_at": _timestamp(now),
        "updated_at": _timestamp(now),
        "items": items,
    }
    return JSONResponse(body, status_code=201, headers={"Location": f"/api/v1/orders/{order_id}"})


async def login(request: Request) -> Response:
    body = json.loads(await request.body())
    folded = body["username"].lower()
    async with request.app.state.pool.acquire() as connection:
        user = await connection.fetchrow(USER_BY_LOGIN, folded, folded, 1)
    if user is None:
        return _problem(401, "Incorrect username or password")
    matches = await anyio.to_thread.run_sync(
        bcrypt.checkpw, body["password"].encode(), user["hashed_password"].encode()
    )
    if not matches:
        return _problem(401, "Incorrect username or password")
    now = datetime.now(UTC).replace(microsecond=0)
    claims = {
        "sub": str(user["id"]),
        "role": user["role"],
        "type": "access",
        "jti": uuid.uuid4().hex,
        "iat": int(now.timestamp()),
        "exp": int((now + timedelta(seconds=ACCESS_TTL)).timestamp()),
    }
    access_token = jwt.encode(claims, SECRET, algorithm="HS256")
    refresh_token = secrets.token_urlsafe(32)
    token_hash = hashlib.sha256(refresh_token.encode()).hexdigest()
    expires_at = now + timedelta(seconds=REFRESH_TTL)
    family_id = uuid.uuid4().hex
    async with request.app.state.pool.acquire() as connection, connection.transaction():
        await connection.execute(INSERT_FAMILY_ROW, family_id, user["id"], datetime.now(UTC), None)
        await connection.fetchval(
            INSERT_REFRESH_ROW, user["id"], family_id, token_hash, datetime.now(UTC), expires_at, None
        )
    return JSONResponse(
        {"access_token": access_token, "refresh_token": refresh_token, "token_type": "bearer", "expires_in": ACCESS_TTL}
    )


async def health(_request: Request) -> Response:
    return JSONResponse({"status": "ok"})


@asynccontextmanager
async def lifespan(app: Starlette) -> AsyncIterator[None]:
    # The same pool bounds as ours (database_pool_size 10 + database_max_overflow 10).
    app.state.pool = await asyncpg.create_pool(os.environ["BASELINE_DATABASE_URL"], min_size=10, max_size=20)
    app.state.redis = Redis.from_url(os.environ["REDIS_URL"])
    try:
        yield
    finally:
        await app.state.redis.aclose()
        await app.state.pool.close()


async def insufficient_stock(_request: Request, _error: Exception) -> Response:
    return _problem(409, "Not enough stock")


app = Starlette(
    routes=[
        Route("/health", health),
        Route("/api/v1/auth/login", login, methods=["POST"]),
        Route("/api/v1/products", list_products),
        Route("/api/v1/products/{id:int}", read_product),
        Route("/api/v1/orders", place_order, methods=["POST"]),
    ],
    exception_handlers={_InsufficientStockError: insufficient_stock},
    lifespan=lifespan,
)
