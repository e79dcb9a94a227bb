"""The shop API: application factory, lifespan, and `app` for `uvicorn main:app`."""

import asyncio
import contextlib
import gc
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import timedelta

from fastapi import FastAPI
from fastapi.telemetry import TelemetryConfig
from fastapi_offline import FastAPIOffline
from redis.asyncio import Redis

from api import docs
from api.cursors import CursorCodec
from api.dependencies import API_PREFIX
from api.errors import install_error_handlers
from api.middleware import (
    BodySizeLimitMiddleware,
    ProblemCORSMiddleware,
    RateLimitMiddleware,
    RequestContextMiddleware,
)
from api.openapi import operation_id
from api.routes import auth, categories, events, health, orders, products, users
from auth.security import PasswordHasher
from config import Settings, get_settings
from database.connection import Database
from infrastructure.mail import open_mailer
from infrastructure.rate_limits import open_rate_limiter
from infrastructure.revocations import DatabaseRevocationStore, RedisRevocationStore, RevocationStore
from observability.logging import configure_logging
from services import maintenance
from services import orders as orders_service
from services import users as users_service
from services.account_mail import AccountMail
from services.auth import AuthService
from services.event_relay import open_event_relay

logger = logging.getLogger(__name__)

AUTH_LIMITED_PATHS = frozenset(
    f"{API_PREFIX}/auth/{name}"
    for name in ("login", "register", "refresh", "password-reset", "password-reset/confirm", "verify-email")
)
CORS_METHODS = ["GET", "POST", "PUT", "PATCH", "DELETE"]
CORS_HEADERS = ["Authorization", "Content-Type", "Idempotency-Key", "If-Match", "If-None-Match"]
CORS_EXPOSED = [
    "X-Request-ID",
    "Location",
    "ETag",
    "Idempotency-Replayed",
    "Retry-After",
    "RateLimit-Limit",
    "RateLimit-Remaining",
    "RateLimit-Reset",
]


async def _bootstrap_admin(settings: Settings, database: Database, hasher: PasswordHasher) -> None:
    if not (settings.admin_username and settings.admin_email and settings.admin_password):
        return
    async with database.sessionmaker() as session:
        await users_service.ensure_admin(
            session=session,
            hasher=hasher,
            username=settings.admin_username,
            email=settings.admin_email,
            password=settings.admin_password.get_secret_value(),
        )


async def _purge_periodically(settings: Settings, database: Database) -> None:
    while True:
        await asyncio.sleep(settings.cleanup_interval_seconds)
        try:
            async with database.sessionmaker() as session:
                await maintenance.purge_expired(
                    session=session,
                    idempotency_ttl=timedelta(seconds=settings.idempotency_ttl_seconds),
                    event_retention=timedelta(days=settings.event_retention_days),
                    events_delivered=settings.nats_url is not None,
                )
        except Exception:
            logger.exception("purging expired rows failed; will try again")


async def _expire_orders_periodically(settings: Settings, database: Database) -> None:
    """Cancel unpaid orders past their deadline. Every process runs this; each order is cancelled once."""
    while True:
        await asyncio.sleep(settings.order_expiry_check_seconds)
        try:
            async with database.sessionmaker() as session:
                await orders_service.expire_orders(session=session)
        except Exception:
            logger.exception("expiring unpaid orders failed; will try again")


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    settings: Settings = app.state.settings
    database = Database(settings)
    timeout = settings.redis_timeout_seconds
    redis = (
        Redis.from_url(settings.redis_url, socket_timeout=timeout, socket_connect_timeout=timeout)
        if settings.redis_url
        else None
    )
    revocations: RevocationStore = RedisRevocationStore(redis) if redis is not None else DatabaseRevocationStore()
    hasher = PasswordHasher(rounds=settings.bcrypt_rounds, concurrency=settings.password_hash_concurrency)
    app.state.database = database
    app.state.redis = redis
    app.state.auth = AuthService(settings=settings, hasher=hasher, revocations=revocations)
    # On the same Redis as the revocations, if any: the limiter's call also reads the caller's revocation key.
    rate_limiter = open_rate_limiter(settings.redis_url) if settings.rate_limit_enabled else None
    app.state.rate_limiter = rate_limiter
    mailer = open_mailer(settings)
    if mailer is not None:
        mailer.start()
    app.state.mailer = mailer
    app.state.account_mail = AccountMail(settings=settings, sessionmaker=database.sessionmaker, mailer=mailer)
    await _bootstrap_admin(settings, database, hasher)
    tasks = [
        asyncio.create_task(_purge_periodically(settings, database)),
        asyncio.create_task(_expire_orders_periodically(settings, database)),
    ]
    # Only with NATS_URL: then every process runs one, and one at a time publishes.
    relay = open_event_relay(settings=settings, database=database)
    if relay is not None:
        tasks.append(asyncio.create_task(relay.run()))
    app.state.event_relay = relay
    # What start-up built (modules, routes, schemas, the pool) lives as long as the process: moved out of the
    # collector's reach. Objects that in-flight requests keep alive reach the oldest generation, and each full
    # collection they set off walked the whole heap: a tenth of a busy worker's time, in pauses of up to 90 ms.
    gc.freeze()
    try:
        yield
    finally:
        gc.unfreeze()
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        if mailer is not None:
            # Before the pool closes: what is still queued needs the database to compose its mail.
            await mailer.close()
        if rate_limiter is not None:
            await rate_limiter.aclose()
        if redis is not None:
            await redis.aclose()
        await database.dispose()


DESCRIPTION = """
JSON API of the shop: accounts, catalogue and orders.

* **Auth**: `POST /api/v1/auth/login` gives a short-lived access token and a rotating refresh token.
  Send `Authorization: Bearer <access token>`; the *Authorize* button logs in with the password form.
* **Roles**: `guest` < `user` < `admin`, checked against the database on every request.
* **Accounts**: every role manages its own under `/api/v1/users/me`; password resets and e-mail verification
  work through single-use links in mails, sent after the response.
* **Money** is a string with two decimals (`"19.90"`); send it as a string or a number with at most two decimals.
* **Errors** are RFC 9457 problem details (`application/problem+json`) with a stable `code` and the `request_id`.
* **Conditional requests**: a GET of one product, category, order or user carries a strong `ETag`;
  `If-None-Match` with it gives 304. Send it as `If-Match` on PUT, PATCH, DELETE or a cancellation, and the write
  happens only while the resource is unchanged (else 412 `precondition_failed`, nothing changed).
* **Rate limits**: `RateLimit-Limit`, `RateLimit-Remaining`, `RateLimit-Reset` on API responses; 429 with
  `Retry-After`. Limits are per user when signed in, else per client IP; login, register, refresh, and the
  password-reset and verification endpoints have a stricter, per-IP limit. If the limit storage (Redis) is
  unreachable, requests are let through and counted.
"""


# The order /docs shows the groups of operations in, whatever order the routes are matched in.
DOCS_TAGS = [
    {"name": name} for name in ("auth", "users", "categories", "products", "orders", "events", "infrastructure")
]


# FastAPI's native OpenTelemetry instrumentation, off: the service's metrics are Prometheus and its logs JSON, and
# with the hooks on, FastAPI asks OpenTelemetry's global providers on every request whether one is configured
# (about 2 % of a catalogue read's CPU). To trace with OpenTelemetry, drop this argument and configure a provider.
NO_OPENTELEMETRY: TelemetryConfig = {"tracing": False, "metrics": False, "logs": False}


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or get_settings()
    configure_logging(settings.log_level)
    app = FastAPIOffline(
        title="Shop API",
        version="1.1.0",
        description=DESCRIPTION,
        lifespan=lifespan,
        # validatorUrl: null, or Swagger UI may show a badge from validator.swagger.io, given the spec's address.
        swagger_ui_parameters={"persistAuthorization": True, "validatorUrl": None},
        # For routes added to the app itself; the routers carry the same function, as their routes are built
        # before they are copied in below.
        generate_unique_id_function=operation_id,
        openapi_tags=DOCS_TAGS,
        telemetry=NO_OPENTELEMETRY,
    )
    app.state.settings = settings
    app.state.cursors = CursorCodec(settings.jwt_secret)
    install_error_handlers(app)

    # Each router carries its full prefix, so its routes are registered as they are. (include_router in this
    # FastAPI wraps a router lazily, and app.routes would then list opaque entries instead of the endpoints.)
    # Requests are matched against the routes in this order, one by one: the catalogue, the hot path, comes
    # first (no path of one router matches another's). The documentation keeps its own order, DOCS_TAGS.
    for router in (
        products.router,
        categories.router,
        orders.router,
        users.router,
        auth.router,
        events.router,
        health.router,
    ):
        app.router.routes.extend(router.routes)
    # First, ahead of the static mount that fastapi_offline added, which would serve ReDoc's bundle unchanged.
    app.router.routes.insert(0, docs.redoc_bundle_route)

    # Added innermost first: the request passes RequestContext, CORS, body limit, then the rate limit.
    if settings.rate_limit_enabled:
        app.add_middleware(RateLimitMiddleware, settings=settings, auth_paths=AUTH_LIMITED_PATHS)
    app.add_middleware(BodySizeLimitMiddleware, max_bytes=settings.max_body_bytes)
    if settings.cors_origins:
        app.add_middleware(
            ProblemCORSMiddleware,
            allow_origins=settings.cors_origins,
            allow_methods=CORS_METHODS,
            allow_headers=CORS_HEADERS,
            expose_headers=CORS_EXPOSED,
            max_age=600,
        )
    app.add_middleware(RequestContextMiddleware, trusted_proxies=settings.trusted_proxies)
    return app


app = create_app()
