"""Dependencies shared by the routes: the session or connection, the principal, role and access checks, pagination."""

from collections.abc import Callable
from typing import Annotated, Any

from fastapi import Depends, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.security import HTTPBearer, OAuth2PasswordBearer
from pydantic import TypeAdapter, ValidationError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from api.cursors import PageQuery
from api.request_database import database_resources
from api.schemas import MAX_ID, IdParam
from api.verified_token import VerifiedToken, store_verified_token, verified_token
from auth.bearer import parse_bearer
from auth.jwt import AccessClaims
from auth.principal import Principal
from auth.roles import Role
from config import Settings
from models import User
from services.access import insufficient_role, orders_visible_to, require_may_read_user, require_verified_email
from services.account_mail import AccountMail
from services.auth import AuthService
from services.errors import AuthenticationError

# Every path under API_ROOT is the API's (any version, known or not): the middleware's headers and rate limits
# apply to all of them.
API_ROOT = "/api/"
API_PREFIX = f"{API_ROOT}v1"
LOGIN_PATH = f"{API_PREFIX}/auth/login"

# Two ways to present the same bearer token, both declared so /docs offers them: the password flow (the
# Authorize button logs in for you) and a pasted token.
oauth2_scheme = OAuth2PasswordBearer(tokenUrl=LOGIN_PATH, auto_error=False, scheme_name="OAuth2Password")
bearer_scheme = HTTPBearer(auto_error=False, scheme_name="BearerToken")


# Dependencies are `async def` even when they never await: FastAPI runs a plain `def` one in a worker thread,
# and that hop costs more than the dependency itself on every request.


async def get_settings(request: Request) -> Settings:
    return request.app.state.settings


async def get_auth_service(request: Request) -> AuthService:
    return request.app.state.auth


async def get_account_mail(request: Request) -> AccountMail:
    return request.app.state.account_mail


async def get_session(request: Request) -> AsyncSession:
    """The request's session; all of a request's database work happens inside it. Closed when the route returns."""
    return await database_resources(request.scope).open(request.app.state.database.sessionmaker())


async def get_connection(request: Request) -> AsyncConnection:
    """A pooled connection for routes that only read (no session, no unit of work, no ORM entities), once the
    caller is authenticated on it, as `current_user` would: one checkout, and one dependency, for both.

    The hottest reads: the two security schemes, which only document the header, are not resolved as
    dependencies here; those routes declare them with READING_SECURITY instead, the same in /openapi.json.
    """
    connection = await database_resources(request.scope).open(request.app.state.database.engine.connect())
    await _principal(request, connection)
    return connection


SettingsDep = Annotated[Settings, Depends(get_settings)]
# Closed when the route returns or raises, before a byte of the response is sent (api/request_database.py): a
# client that reads slowly must not keep a pooled connection checked out. Routes therefore render their response
# while the session is open.
SessionDep = Annotated[AsyncSession, Depends(get_session)]
# The same for a connection; the caller is authenticated on it.
ConnectionDep = Annotated[AsyncConnection, Depends(get_connection)]
AuthServiceDep = Annotated[AuthService, Depends(get_auth_service)]
AccountMailDep = Annotated[AccountMail, Depends(get_account_mail)]


def bearer_token(request: Request) -> str:
    """The raw token of `Authorization: Bearer <token>`."""
    header = request.headers.get("authorization")
    if not header:
        raise AuthenticationError("Authentication required", code="not_authenticated")
    token = parse_bearer(header)
    if token is None:
        raise AuthenticationError("Use an Authorization: Bearer <token> header", code="invalid_token")
    return token


def _request_token(request: Request) -> VerifiedToken:
    """The request's access token, verified once: by the rate limiter on its way in, or here."""
    token = verified_token(request.scope)
    if token is None:
        auth: AuthService = request.app.state.auth
        token = VerifiedToken(claims=auth.decode(bearer_token(request)), revoked=None)
        store_verified_token(request.scope, token)
    return token


async def _principal(request: Request, connection: AsyncConnection) -> Principal:
    auth: AuthService = request.app.state.auth
    token = _request_token(request)
    principal = await auth.authenticate(connection=connection, claims=token.claims, revoked=token.revoked)
    request.state.user_id = principal.id
    return principal


async def current_user(
    request: Request,
    session: SessionDep,
    _oauth2: Annotated[str | None, Depends(oauth2_scheme)],
    _bearer: Annotated[Any, Depends(bearer_scheme)],
) -> Principal:
    """The caller, read fresh so a role change or deactivation counts at once, on the session's connection.

    One dependency does the whole job: each dependency FastAPI resolves costs measurable time on every request.
    """
    return await _principal(request, await session.connection())


# What FastAPI writes into an operation for the two scheme dependencies of `current_user`, for ConnectionDep's.
READING_SECURITY = {"security": [{oauth2_scheme.scheme_name: []}, {bearer_scheme.scheme_name: []}]}


async def current_account(
    request: Request,
    session: SessionDep,
    _oauth2: Annotated[str | None, Depends(oauth2_scheme)],
    _bearer: Annotated[Any, Depends(bearer_scheme)],
) -> User:
    """The caller's whole account as an entity in the request's session, for the `/users/me` routes."""
    auth: AuthService = request.app.state.auth
    token = _request_token(request)
    user = await auth.authenticate_account(session=session, claims=token.claims, revoked=token.revoked)
    request.state.user_id = user.id
    return user


async def access_claims(request: Request, _user: "CurrentUser") -> AccessClaims:
    """The verified claims of the current user's token (logout revokes its `jti`)."""
    return _request_token(request).claims


AccessClaimsDep = Annotated[AccessClaims, Depends(access_claims)]


CurrentUser = Annotated[Principal, Depends(current_user)]
CurrentAccount = Annotated[User, Depends(current_account)]


def require_role(minimum: Role) -> Callable[..., Any]:
    """A dependency that admits users whose current role (from the database, not the token) is `minimum` or more."""

    async def check_role(user: CurrentUser) -> Principal:
        if not user.role.includes(minimum):
            raise insufficient_role(minimum)
        return user

    return check_role


Customer = Annotated[Principal, Depends(require_role(Role.USER))]
Admin = Annotated[Principal, Depends(require_role(Role.ADMIN))]


async def order_placer(request: Request, user: Customer) -> Principal:
    """A customer who may place orders: with REQUIRE_VERIFIED_EMAIL, only once their address is verified."""
    if request.app.state.settings.require_verified_email:
        require_verified_email(actor=user)
    return user


OrderPlacer = Annotated[Principal, Depends(order_placer)]


# Reading another user's records is judged on the raw parameter, before the route validates it: the contract puts
# role (403) before validation (422). The service judges again, by the same named rule.
_ID = TypeAdapter(IdParam)
# Ids start at 1: what the rule is asked about when the parameter is not an id at all.
_NOBODY = 0


def _named_id(raw: str) -> int:
    """The user id a raw parameter names, or nobody's."""
    try:
        return _ID.validate_python(raw)
    except ValidationError:
        return _NOBODY


async def user_reader(request: Request, user: CurrentUser) -> Principal:
    """The current user, if `require_may_read_user` lets them read the user of the path's `{id}`."""
    require_may_read_user(actor=user, user_id=_named_id(request.path_params["id"]))
    return user


async def orders_reader(request: Request, user: CurrentUser) -> Principal:
    """The current user, if `orders_visible_to` lets them ask for the orders of the query's `user_id`."""
    named = request.query_params.get("user_id")
    orders_visible_to(actor=user, user_id=None if named is None else _named_id(named))
    return user


UserReader = Annotated[Principal, Depends(user_reader)]
OrdersReader = Annotated[Principal, Depends(orders_reader)]


CURSOR_DESCRIPTION = (
    "Cursor mode: empty (`cursor=`) for the first items, else a page's `next_cursor` for the items after it, in "
    "the same order, with any `size`. No count is made (`total`, `page` and `pages` are null) and a page costs the "
    "same at any depth; walking a list this way while it changes returns every row that matched throughout (its "
    "sort key unchanged) exactly once. A cursor is opaque and works only with the filters and `sort` of the "
    "request that returned it, on the same list: anything else is 400 `invalid_cursor`. Not with `page`."
)


async def page_query(
    request: Request,
    page: Annotated[
        int | None, Query(ge=1, le=MAX_ID, description="1-based page number (default 1); not with `cursor`")
    ] = None,
    size: Annotated[int, Query(ge=1, le=100, description="Items per page")] = 20,
    cursor: Annotated[str | None, Query(description=CURSOR_DESCRIPTION)] = None,
) -> PageQuery:
    if page is not None and cursor is not None:
        raise RequestValidationError(
            [{"type": "page_with_cursor", "loc": ("query", "page"), "msg": "Send either page or cursor, not both"}]
        )
    # The route's path names the list a cursor belongs to.
    list_path = request.scope["route"].path
    return PageQuery(codec=request.app.state.cursors, list_path=list_path, size=size, page=page, cursor=cursor)


PageDep = Annotated[PageQuery, Depends(page_query)]
