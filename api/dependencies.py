"""Dependencies shared by the routes: the session, the current user, role checks, pagination."""

from collections.abc import AsyncIterator, Callable
from typing import Annotated, Any

from fastapi import Depends, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.security import HTTPBearer, OAuth2PasswordBearer
from sqlalchemy.ext.asyncio import AsyncSession

from api.cursors import PageQuery
from api.schemas import MAX_ID
from auth.jwt import AccessClaims
from auth.roles import Role
from config import Settings
from models import User
from services.access import insufficient_role
from services.auth import AuthService
from services.errors import AuthenticationError, PermissionDeniedError

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


async def get_session(request: Request) -> AsyncIterator[AsyncSession]:
    async with request.app.state.database.sessionmaker() as session:
        yield session


SettingsDep = Annotated[Settings, Depends(get_settings)]
SessionDep = Annotated[AsyncSession, Depends(get_session)]
AuthServiceDep = Annotated[AuthService, Depends(get_auth_service)]


def bearer_token(request: Request) -> str:
    """The raw token of `Authorization: Bearer <token>`."""
    header = request.headers.get("authorization")
    if not header:
        raise AuthenticationError("Authentication required", code="not_authenticated")
    scheme, _, token = header.partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token:
        raise AuthenticationError("Use an Authorization: Bearer <token> header", code="invalid_token")
    return token


async def current_user(
    request: Request,
    session: SessionDep,
    _oauth2: Annotated[str | None, Depends(oauth2_scheme)],
    _bearer: Annotated[Any, Depends(bearer_scheme)],
) -> User:
    """The user behind the bearer token, loaded fresh so a role change or deactivation counts at once.

    One dependency does the whole job: each dependency FastAPI resolves costs measurable time on every request.
    """
    auth: AuthService = request.app.state.auth
    # The rate limiter may have verified this token already; its claims ride on the request state.
    claims = getattr(request.state, "access_claims", None)
    if claims is None:
        claims = auth.decode(bearer_token(request))
        request.state.access_claims = claims
    user = await auth.authenticate(session=session, claims=claims)
    request.state.user_id = user.id
    return user


async def access_claims(request: Request, _user: "CurrentUser") -> AccessClaims:
    """The verified claims of the current user's token (logout revokes its `jti`)."""
    return request.state.access_claims


AccessClaimsDep = Annotated[AccessClaims, Depends(access_claims)]


CurrentUser = Annotated[User, Depends(current_user)]


def require_role(minimum: Role) -> Callable[..., Any]:
    """A dependency that admits users whose current role (from the database, not the token) is `minimum` or more."""

    async def check_role(user: CurrentUser) -> User:
        if not user.role.includes(minimum):
            raise insufficient_role(minimum)
        return user

    return check_role


Customer = Annotated[User, Depends(require_role(Role.USER))]
Admin = Annotated[User, Depends(require_role(Role.ADMIN))]


def _admin_or_self(user: User, named_id: str | None, what: str) -> User:
    # Judged on the raw parameter, before it is validated: the contract puts role (403) before validation (422).
    if named_id is None or named_id == str(user.id) or user.role.includes(Role.ADMIN):
        return user
    raise PermissionDeniedError(f"Only admins may read {what}", code="insufficient_role")


async def admin_or_self_in_path(request: Request, user: CurrentUser) -> User:
    """Admins, or the user whose id is the path's `{id}`."""
    return _admin_or_self(user, request.path_params.get("id"), "other users")


async def admin_or_self_in_query(request: Request, user: CurrentUser) -> User:
    """Admins with any `user_id` filter; others with none or their own."""
    return _admin_or_self(user, request.query_params.get("user_id"), "other users' orders")


AdminOrSelf = Annotated[User, Depends(admin_or_self_in_path)]
AdminOrOwnOrders = Annotated[User, Depends(admin_or_self_in_query)]


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
