"""Registration, login (JSON or OAuth2 form), refresh-token rotation, logout, password reset and e-mail verification."""

from typing import Annotated

from fastapi import Body, Request, Response, status
from fastapi.exceptions import RequestValidationError
from pydantic import ValidationError

from api.dependencies import API_PREFIX, AccessClaimsDep, AccountMailDep, AuthServiceDep, CurrentUser, SessionDep
from api.errors import UnsupportedMediaTypeError
from api.openapi import LOCATION_HEADER, problems
from api.responses import ModelResponse, created
from api.routing import api_router, loads_exact
from api.schemas import (
    AcceptedOut,
    LoginIn,
    LogoutIn,
    PasswordResetConfirmIn,
    PasswordResetIn,
    RefreshIn,
    RegisterIn,
    TokenOut,
    UserOut,
    VerifyEmailIn,
)
from observability.metrics import LOGINS
from services import accounts as accounts_service
from services import users as users_service
from services.errors import AuthenticationError, PermissionDeniedError

router = api_router(prefix=f"{API_PREFIX}/auth", tags=["auth"])

FORM_MEDIA_TYPE = "application/x-www-form-urlencoded"
_LOGIN_FORM_SCHEMA = {
    "type": "object",
    "required": ["username", "password"],
    "properties": {
        "grant_type": {"type": "string", "enum": ["password"]},
        "username": {"type": "string", "description": "Username or email"},
        "password": {"type": "string", "format": "password"},
    },
}


def _token_response(pair: object) -> ModelResponse:
    return ModelResponse(TokenOut.model_validate(pair, from_attributes=True))


@router.post(
    "/register",
    status_code=status.HTTP_201_CREATED,
    response_model=UserOut,
    responses={201: {"headers": LOCATION_HEADER}, **problems(409, 422, 429, 503)},
    summary="Create an account (always with the user role)",
    description="A verification mail goes to the address; until its link is followed, `email_verified` is false.",
)
async def register(body: RegisterIn, session: SessionDep, auth: AuthServiceDep, mail: AccountMailDep) -> ModelResponse:
    user = await users_service.register_user(
        session=session,
        hasher=auth.hasher,
        username=body.username,
        email=str(body.email),
        password=body.password,
        verify_with=mail,
    )
    return created(UserOut.model_validate(user), f"{API_PREFIX}/users/{user.id}")


async def _login_body(request: Request) -> LoginIn:
    """Read a JSON body or an OAuth2 password form (what the Authorize button of /docs sends)."""
    media_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if media_type == FORM_MEDIA_TYPE:
        form = await request.form()
        fields = {name: form.get(name) for name in ("username", "password") if form.get(name) is not None}
    elif media_type in ("application/json", ""):
        # This route reads its body itself (no body field for the route class to hook), with the same parser.
        # RecursionError: JSON nested deeper than the parser can follow is as unreadable as broken JSON.
        try:
            fields = loads_exact(await request.body())
        except (ValueError, UnicodeDecodeError, RecursionError):
            raise RequestValidationError([{"type": "json_invalid", "loc": ("body",), "msg": "Invalid JSON"}]) from None
    else:
        raise UnsupportedMediaTypeError(f"Send {FORM_MEDIA_TYPE} or application/json, not {media_type}")
    try:
        return LoginIn.model_validate(fields)
    except ValidationError as error:
        raise RequestValidationError(
            [{**issue, "loc": ("body", *issue["loc"])} for issue in error.errors(include_input=False)]
        ) from None


@router.post(
    "/login",
    response_model=TokenOut,
    responses=problems(401, 403, 415, 422, 429, 503),
    summary="Exchange a username (or email) and password for a token pair",
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {
                "application/json": {"schema": LoginIn.model_json_schema()},
                FORM_MEDIA_TYPE: {"schema": _LOGIN_FORM_SCHEMA},
            },
        }
    },
)
async def login(request: Request, session: SessionDep, auth: AuthServiceDep) -> ModelResponse:
    body = await _login_body(request)
    try:
        pair = await auth.login(session=session, login=body.username, password=body.password)
    except (AuthenticationError, PermissionDeniedError) as refused:
        LOGINS.labels(outcome=refused.code).inc()
        raise
    LOGINS.labels(outcome="success").inc()
    return _token_response(pair)


@router.post(
    "/refresh",
    response_model=TokenOut,
    responses=problems(401, 403, 422, 429, 503),
    summary="Rotate a refresh token: each is good once; reuse revokes its whole family",
)
async def refresh(body: RefreshIn, session: SessionDep, auth: AuthServiceDep) -> ModelResponse:
    return _token_response(await auth.refresh(session=session, refresh_token=body.refresh_token))


@router.post(
    "/logout",
    status_code=status.HTTP_204_NO_CONTENT,
    responses=problems(401, 403, 422, 429, 503),
    summary="Revoke this access token and, if named, the refresh token's family",
)
async def logout(
    _user: CurrentUser,
    claims: AccessClaimsDep,
    session: SessionDep,
    auth: AuthServiceDep,
    body: Annotated[LogoutIn | None, Body()] = None,
) -> Response:
    await auth.logout(session=session, claims=claims, refresh_token=body.refresh_token if body else None)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


RESET_ACCEPTED = AcceptedOut(detail="If that address belongs to an active account, a reset link is on its way")


@router.post(
    "/password-reset",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=AcceptedOut,
    responses=problems(422, 429, 503),
    summary="Ask for a password-reset mail",
    description="The same 202, body and headers whether or not the address belongs to an active account; the "
    "lookup happens after the response. When it does, a mail with a single-use link (`PASSWORD_RESET_URL`) goes "
    "there. 503 `mail_unavailable` when the shop cannot send mail.",
)
async def request_password_reset(body: PasswordResetIn, mail: AccountMailDep) -> ModelResponse:
    mail.request_password_reset(email=str(body.email))
    return ModelResponse(RESET_ACCEPTED, status_code=status.HTTP_202_ACCEPTED)


@router.post(
    "/password-reset/confirm",
    status_code=status.HTTP_204_NO_CONTENT,
    responses=problems(400, 422, 429, 503),
    summary="Set a new password with the token of a reset mail",
    description="Every access and refresh token of the account, and every other reset token of it, is refused "
    "from then on. A token that is not a live reset token, whatever the string, is 400 `invalid_reset_token`.",
)
async def confirm_password_reset(body: PasswordResetConfirmIn, session: SessionDep, auth: AuthServiceDep) -> Response:
    await accounts_service.confirm_password_reset(
        session=session, hasher=auth.hasher, token=body.token, new_password=body.new_password
    )
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.post(
    "/verify-email",
    status_code=status.HTTP_204_NO_CONTENT,
    responses=problems(400, 422, 429, 503),
    summary="Verify an account's e-mail address with the token of a verification mail",
    description="A token that is not a live verification token for the account's current address, whatever the "
    "string, is 400 `invalid_verification_token`.",
)
async def verify_email(body: VerifyEmailIn, session: SessionDep) -> Response:
    await accounts_service.verify_email(session=session, token=body.token)
    return Response(status_code=status.HTTP_204_NO_CONTENT)
