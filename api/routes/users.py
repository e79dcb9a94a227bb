"""Accounts: one's own profile and account (any role, guests included), and the admin's view and control of everyone's.

The `/me` routes come first: `/users/{id}` would otherwise take `me` for an id.
"""

from typing import Annotated

from fastapi import Body, Request, Response, status

from api.conditional import IF_NONE_MATCH_PARAMETERS, IfMatch, if_none_match, tagged
from api.dependencies import (
    API_PREFIX,
    AccountMailDep,
    Admin,
    AuthServiceDep,
    CurrentAccount,
    PageDep,
    SessionDep,
    UserReader,
)
from api.openapi import CONDITIONAL_READ, CONDITIONAL_WRITE, LOCATION_HEADER, PROTECTED, problems
from api.responses import ModelResponse, created
from api.routing import api_router
from api.schemas import (
    AcceptedOut,
    Page,
    PasswordChangeIn,
    PasswordIn,
    PathId,
    ProfilePatch,
    TokenOut,
    UserCreateIn,
    UserOut,
    UserPatch,
)
from services import accounts as accounts_service
from services import users as users_service

router = api_router(prefix=f"{API_PREFIX}/users", tags=["users"], responses=PROTECTED)

NO_CONTENT = status.HTTP_204_NO_CONTENT
TOKENS_REFUSED = "every access and refresh token of the account issued until now is refused, on every process"


@router.get(
    "/me",
    response_model=UserOut,
    responses=CONDITIONAL_READ,
    summary="The signed-in user",
    openapi_extra=IF_NONE_MATCH_PARAMETERS,
)
async def read_me(request: Request, user: CurrentAccount) -> Response:
    return tagged(UserOut, user, if_none_match=if_none_match(request))


@router.patch(
    "/me",
    response_model=UserOut,
    responses={**problems(409), **CONDITIONAL_WRITE},
    summary="Change one's own username or e-mail",
    description="Registration's rules and 409s apply. A changed e-mail address is unverified (`email_verified` "
    "false) and gets a verification mail. Any other field is 422.",
)
async def update_me(
    user: CurrentAccount, body: ProfilePatch, session: SessionDep, mail: AccountMailDep, if_match: IfMatch
) -> Response:
    updated = await users_service.update_profile(
        session=session,
        user=user,
        username=body.username,
        email=None if body.email is None else str(body.email),
        mail=mail,
        expected_versions=if_match,
    )
    return tagged(UserOut, updated)


@router.delete(
    "/me",
    status_code=NO_CONTENT,
    responses={**problems(409), **CONDITIONAL_WRITE},
    summary="Erase one's own account",
    description="Needs the account's password (wrong: 403 `invalid_credentials`). Its username and e-mail are "
    "free at once, logging in with them fails, its tokens are refused, and the user is gone from `/users`; its "
    "orders stay, with their `user_id`. The shop's only active admin gets 409 `last_admin`.",
)
async def erase_my_account(
    user: CurrentAccount,
    body: Annotated[PasswordIn, Body()],
    session: SessionDep,
    auth: AuthServiceDep,
    if_match: IfMatch,
) -> Response:
    await accounts_service.erase_account(
        session=session, hasher=auth.hasher, user=user, password=body.password, expected_versions=if_match
    )
    return Response(status_code=NO_CONTENT)


@router.post(
    "/me/password",
    response_model=TokenOut,
    summary="Change one's own password; every other session ends",
    description="A wrong `current_password` is 403 `invalid_credentials`. Returns a new token pair, as login does; "
    f"from then on {TOKENS_REFUSED}, this request's included.",
)
async def change_my_password(
    user: CurrentAccount, body: PasswordChangeIn, session: SessionDep, auth: AuthServiceDep
) -> ModelResponse:
    pair = await accounts_service.change_password(
        session=session,
        auth=auth,
        user=user,
        current_password=body.current_password,
        new_password=body.new_password,
    )
    return ModelResponse(TokenOut.model_validate(pair, from_attributes=True))


@router.delete(
    "/me/sessions",
    status_code=NO_CONTENT,
    summary="Sign out everywhere",
    description=f"From then on {TOKENS_REFUSED}, the one of this request included; logging in again works.",
)
async def sign_out_everywhere(user: CurrentAccount, session: SessionDep) -> Response:
    await accounts_service.sign_out_everywhere(session=session, user=user)
    return Response(status_code=NO_CONTENT)


@router.post(
    "/me/verification-email",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=AcceptedOut,
    responses=problems(409, 503),
    summary="Send a fresh verification mail to one's own address",
    description="409 `already_verified` when it is; 503 `mail_unavailable` when the shop cannot send mail; 429 "
    "`too_many_mails` (with Retry-After) once the account had 5 verification mails within the hour, whatever asked "
    "for them (registration, a new address, this).",
)
async def send_verification_email(user: CurrentAccount, session: SessionDep, mail: AccountMailDep) -> ModelResponse:
    await accounts_service.resend_verification(session=session, user=user, mail=mail)
    return ModelResponse(AcceptedOut(detail="A verification mail is on its way"), status_code=status.HTTP_202_ACCEPTED)


@router.get("", response_model=Page[UserOut], responses=problems(400), summary="All users, by id (admin)")
async def list_users(_admin: Admin, session: SessionDep, page: PageDep) -> ModelResponse:
    paging = page.bind()
    result = await users_service.list_users(session=session, page=paging.request)
    return ModelResponse(paging.page_of(UserOut, result))


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    response_model=UserOut,
    responses={201: {"headers": LOCATION_HEADER}, **problems(409)},
    summary="Create a user (admin); its address counts as verified",
    description="Registration's rules and 409s; `role` defaults to `user`.",
)
async def create_user(admin: Admin, body: UserCreateIn, session: SessionDep, auth: AuthServiceDep) -> ModelResponse:
    user = await users_service.register_user(
        session=session,
        hasher=auth.hasher,
        username=body.username,
        email=str(body.email),
        password=body.password,
        role=body.role,
        actor=admin,
    )
    return created(UserOut.model_validate(user), f"{API_PREFIX}/users/{user.id}")


@router.get(
    "/{id}",
    response_model=UserOut,
    responses={**problems(404), **CONDITIONAL_READ},
    summary="A user (admin, or that user itself)",
    openapi_extra=IF_NONE_MATCH_PARAMETERS,
)
async def read_user(request: Request, reader: UserReader, user_id: PathId, session: SessionDep) -> Response:
    conditions = if_none_match(request)
    user = await users_service.get_user(session=session, actor=reader, user_id=user_id)
    return tagged(UserOut, user, if_none_match=conditions)


@router.patch(
    "/{id}",
    response_model=UserOut,
    responses={**problems(404, 409), **CONDITIONAL_WRITE},
    summary="Change a user's role or active flag (admin); effective on that user's next request",
)
async def update_user(
    admin: Admin, user_id: PathId, body: UserPatch, session: SessionDep, if_match: IfMatch
) -> Response:
    user = await users_service.update_user(
        session=session,
        actor=admin,
        user_id=user_id,
        role=body.role,
        is_active=body.is_active,
        expected_versions=if_match,
    )
    return tagged(UserOut, user)


@router.delete(
    "/{id}/sessions",
    status_code=NO_CONTENT,
    responses=problems(404),
    summary="Sign a user out everywhere (admin)",
    description=f"From then on {TOKENS_REFUSED}; logging in again works.",
)
async def sign_user_out_everywhere(admin: Admin, user_id: PathId, session: SessionDep) -> Response:
    await accounts_service.sign_out_user(session=session, actor=admin, user_id=user_id)
    return Response(status_code=NO_CONTENT)
